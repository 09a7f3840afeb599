"""The ordering rule of the switch: S3 sequencer per key, else event time (ms) then key."""

from __future__ import annotations

from retrain_pipeline.source import SourceObject
from retrain_pipeline.switching import SwitchOrder, sequencer_value


def order(key: str, sequencer: str, time: str) -> SwitchOrder:
    return SwitchOrder.of(SourceObject("b", key, None, "e", 1, sequencer, time))


def test_sequencers_compare_as_numbers_after_left_padding() -> None:
    # AWS: pad the shorter sequencer with zeros on the left, then compare.
    assert sequencer_value("0062E99A88DC4075") < sequencer_value("0062E99A88DC407460")
    longer = order("incoming/m/a.csv", "0062E99A88DC407460", "2024-01-01T00:00:00Z")
    shorter = order("incoming/m/a.csv", "0062E99A88DC4075", "2024-01-01T00:00:00Z")
    assert longer.is_newer_than(shorter)
    assert not shorter.is_newer_than(longer)
    assert order("incoming/m/a.csv", "0a", "2024-01-01T00:00:00Z").is_newer_than(
        order("incoming/m/a.csv", "1", "2024-01-01T00:00:00Z")
    )


def test_different_keys_event_time_in_milliseconds_then_key() -> None:
    early = order("incoming/m/z.csv", "FF", "2024-01-01T00:00:00.100Z")
    late = order("incoming/m/a.csv", "00", "2024-01-01T00:00:00.200Z")
    assert late.is_newer_than(early) and not early.is_newer_than(late)
    oct_ = order("incoming/m/sales-2026-10.csv", "02", "2024-01-01T00:00:00Z")
    nov = order("incoming/m/sales-2026-11.csv", "01", "2024-01-01T00:00:00.000+00:00")
    assert nov.is_newer_than(oct_) and not oct_.is_newer_than(nov)


def test_the_same_file_is_not_newer_than_itself_and_times_normalise() -> None:
    a = order("incoming/m/a.csv", "01", "2024-01-01T09:00:00+09:00")
    b = order("incoming/m/a.csv", "01", "2024-01-01T00:00:00.000Z")
    assert a == b and not a.is_newer_than(b)
    assert a.event_time == "2024-01-01T00:00:00.000Z"


def test_gate_items_written_before_the_rule_are_still_read() -> None:
    legacy = {
        "last_order": "2024-01-01T00:00:05.000000+00:00#2024-01-01T00:00:06.000000+00:00#01",
        "last_source": "k",
    }
    last = SwitchOrder.from_item(legacy)
    assert last == SwitchOrder("k", "", "2024-01-01T00:00:05.000Z")
    assert order("k2", "", "2024-01-01T00:00:06Z").is_newer_than(last)
