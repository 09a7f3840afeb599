"""One reading of ISO 8601 times as UTC, for the switch order, the source's ordering key and the local
stack's S3 events. The texts they make are compared as strings and stored in DynamoDB: they stay exactly
as they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from retrain_pipeline.source import SourceObject
from retrain_pipeline.switching import SwitchOrder
from retrain_pipeline.timestamps import iso, parse_iso

from p1_retrain.local.s3events import S3EventRewriter

# (event time, SwitchOrder.event_time, the ordering key's time part, milliseconds S3EventRewriter reads)
TIMES = [
    ("", "0000-00-00T00:00:00.000Z", "0000-00-00T00:00:00.000000+00:00", None),
    ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00.000000+00:00", 1714564800000),
    (
        "2024-05-01T12:00:00.123456Z",
        "2024-05-01T12:00:00.123Z",
        "2024-05-01T12:00:00.123456+00:00",
        1714564800123,
    ),
    ("2024-05-01T12:00:00.1Z", "2024-05-01T12:00:00.100Z", "2024-05-01T12:00:00.100000+00:00", 1714564800100),
    (
        "2024-05-01T14:30:00+02:30",
        "2024-05-01T12:00:00.000Z",
        "2024-05-01T12:00:00.000000+00:00",
        1714564800000,
    ),
    ("2024-05-01T12:00:00", "2024-05-01T12:00:00.000Z", "2024-05-01T12:00:00.000000+00:00", 1714564800000),
    ("2024-05-01", "2024-05-01T00:00:00.000Z", "2024-05-01T00:00:00.000000+00:00", 1714521600000),
    (
        "2024-05-01T12:00:00.999999-01:00",
        "2024-05-01T13:00:00.999Z",
        "2024-05-01T13:00:00.999999+00:00",
        1714568400999,
    ),
    ("not a time", "not a time", "not a time", None),
]


def _source(event_time: str) -> SourceObject:
    return SourceObject("bucket", "incoming/demo/a.csv", "v1", "etag", 1, "01", event_time)


@pytest.mark.parametrize(("value", "order_time", "key_time", "event_ms"), TIMES)
def test_the_three_readers_keep_their_texts(
    value: str, order_time: str, key_time: str, event_ms: int | None
) -> None:
    assert SwitchOrder.of(_source(value)).event_time == order_time
    assert _source(value).ordering_key().split("#")[0] == key_time
    assert _source("").ordering_key(value or "x").split("#")[1] == (key_time if value else "x")
    event = {"source": "aws.s3", "time": value, "detail": {"bucket": {"name": "b"}, "object": {"key": "k"}}}
    rewritten = S3EventRewriter(clock=lambda: 0.0).rewrite(event)
    expected_ms = event_ms or 0
    assert rewritten["time"] == iso(datetime.fromtimestamp(expected_ms / 1000, tz=UTC))


def test_parse_iso_gives_aware_utc() -> None:
    assert parse_iso("2024-05-01T14:30:00+02:30") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_iso("2024-05-01T14:30:00+02:30").tzinfo is UTC
    assert parse_iso("2024-05-01T12:00:00").tzinfo is UTC
    assert iso(datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2, minutes=30)))) == (
        "2024-05-01T12:00:00.000Z"
    )
    with pytest.raises(ValueError):
        parse_iso("not a time")
