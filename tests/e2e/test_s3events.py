"""moto's S3 events rewritten as S3 sends them: millisecond time, increasing sequencer, ``etag``."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from retrain_pipeline.switching import sequencer_value

from p1_retrain.local.s3events import S3EventRewriter


def moto_event(key: str, version: str, etag: str = "abc") -> dict:
    """What moto puts on the rule's target: one event id and one sequencer for every object."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": "2026-11-30T09:00:00Z",
        "detail": {
            "bucket": {"name": "bucket"},
            "object": {
                "key": key,
                "size": 3,
                "eTag": etag,
                "version-id": version,
                "sequencer": "617f08299329d189",
            },
        },
    }


def clock(start: float = 1796029200.0, step: float = 0.0004):
    ticks = itertools.count()
    return lambda: start + step * next(ticks)


def test_etag_spelling_millisecond_time_and_own_ids() -> None:
    rewriter = S3EventRewriter(clock=clock())
    first = rewriter.rewrite(moto_event("incoming/m/a.csv", "v1"))
    second = rewriter.rewrite(moto_event("incoming/m/b.csv", "v2"))
    obj = first["detail"]["object"]
    assert "eTag" not in obj and obj["etag"] == "abc"
    assert first["time"] == "2026-11-30T09:00:00.000Z"
    assert first["time"] <= second["time"] and len(second["time"]) == len("2026-11-30T09:00:00.000Z")
    assert first["id"] != second["id"]


def test_sequencers_strictly_increase_even_within_one_millisecond() -> None:
    rewriter = S3EventRewriter(clock=lambda: 1796029200.0)
    sequencers = [
        rewriter.rewrite(moto_event("incoming/m/a.csv", f"v{index}"))["detail"]["object"]["sequencer"]
        for index in range(50)
    ]
    values = [sequencer_value(value) for value in sequencers]
    assert values == sorted(set(values)) and len(set(values)) == 50
    assert all(len(value) == 18 for value in sequencers)


def test_a_redelivered_event_is_rewritten_the_same_way() -> None:
    rewriter = S3EventRewriter(clock=clock(step=0.5))
    once = rewriter.rewrite(moto_event("incoming/m/a.csv", "v1"))
    rewriter.rewrite(moto_event("incoming/m/a.csv", "v2"))
    assert rewriter.rewrite(moto_event("incoming/m/a.csv", "v1")) == once


def test_time_from_last_modified_and_never_before_the_stated_second() -> None:
    modified = datetime(2026, 11, 30, 9, 0, 0, 250_000, tzinfo=UTC)
    rewriter = S3EventRewriter(clock=lambda: 0.0, last_modified=lambda bucket, key, version: modified)
    assert rewriter.rewrite(moto_event("incoming/m/a.csv", "v1"))["time"] == "2026-11-30T09:00:00.250Z"
    early = S3EventRewriter(clock=lambda: 0.0)
    assert early.rewrite(moto_event("incoming/m/a.csv", "v1"))["time"] == "2026-11-30T09:00:00.000Z"


def test_other_events_pass_unchanged() -> None:
    other = {"source": "aws.sqs", "detail": {"x": 1}}
    assert S3EventRewriter().rewrite(other) is other
