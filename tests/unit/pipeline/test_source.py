"""Parsing the EventBridge event and the key rules."""

from __future__ import annotations

from typing import Any

import pytest
from retrain_pipeline.errors import (
    EmptyObject,
    FolderMarker,
    KeyOutsideModelFolder,
    KeyOutsidePrefix,
    UnsupportedFileType,
)
from retrain_pipeline.keys import model_and_rest
from retrain_pipeline.source import SourceObject, model_of, parse_event, validate

ALLOWED = (".csv", ".tsv", ".zip")


def event(key: str, **object_fields: Any) -> dict[str, Any]:
    obj = {"key": key, "size": 10, "etag": "abc", "version-id": "v1", "sequencer": "0062E99A88DC407460"}
    obj.update(object_fields)
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2021-11-12T00:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:s3:::data-bucket"],
        "detail": {
            "version": "0",
            "bucket": {"name": "data-bucket"},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


@pytest.mark.parametrize(
    "key",
    [
        "incoming/demo/a b.csv",
        "incoming/demo/a+b.csv",
        "incoming/demo/%2B literally.csv",
        "incoming/モデル/データ 2024+1.csv",
        "incoming/demo/" + "x" * (1000 - len("incoming/demo/") - 4) + ".csv",
    ],
)
def test_the_key_is_read_raw(key: str) -> None:
    source = parse_event(event(key))
    assert source.key == key
    assert source.to_dict()["key"] == key


def test_every_field_of_the_contract_shape() -> None:
    source = parse_event(event("incoming/demo/data.csv"))
    assert source.to_dict() == {
        "bucket": "data-bucket",
        "key": "incoming/demo/data.csv",
        "version_id": "v1",
        "etag": "abc",
        "size": 10,
        "sequencer": "0062E99A88DC407460",
        "event_time": "2021-11-12T00:00:00Z",
    }
    assert SourceObject.from_dict(source.to_dict()) == source


def test_moto_etag_spelling_and_missing_version() -> None:
    raw = event("incoming/demo/data.csv", eTag='"f00"')
    del raw["detail"]["object"]["etag"]
    del raw["detail"]["object"]["version-id"]
    source = parse_event(raw)
    assert (source.etag, source.version_id, source.version) == ("f00", None, "f00")
    del raw["detail"]["object"]["eTag"]
    assert parse_event(raw).version == "0062E99A88DC407460"  # the sequencer, never an empty key


@pytest.mark.parametrize(
    "bad", [{}, {"detail": "x"}, {"detail": {"bucket": {"name": "b"}}}, {"detail": {"object": {"key": "k"}}}]
)
def test_not_an_s3_event(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="EventBridge S3 event"):
        parse_event(bad)


def test_model_is_the_first_folder_after_incoming() -> None:
    assert model_of("incoming/churn/2024/jan.csv") == "churn"
    assert model_and_rest("incoming/churn/2024/jan.csv") == ("churn", "2024/jan.csv")
    assert model_and_rest("incoming/loose.csv") == (None, "loose.csv")
    assert model_and_rest("elsewhere/x.csv") == (None, "elsewhere/x.csv")


@pytest.mark.parametrize("key", ["incoming/data.csv", "incoming//data.csv"])
def test_key_outside_a_model_folder(key: str) -> None:
    with pytest.raises(KeyOutsideModelFolder, match="not inside a model folder") as raised:
        validate(parse_event(event(key)), ALLOWED)
    assert key in str(raised.value)


@pytest.mark.parametrize(
    "key", ["other/demo/data.csv", "results/demo/j/summary.json", "failed/demo/x.json", "results/demo/"]
)
def test_key_outside_incoming_is_outside_the_prefix(key: str) -> None:
    with pytest.raises(KeyOutsidePrefix, match="not under incoming/") as raised:
        validate(parse_event(event(key)), ALLOWED)
    assert key in str(raised.value)


def test_folder_marker() -> None:
    with pytest.raises(FolderMarker, match="folder marker"):
        validate(parse_event(event("incoming/demo/", size=0)), ALLOWED)


def test_empty_object() -> None:
    with pytest.raises(EmptyObject, match=r"s3://data-bucket/incoming/demo/e\.csv is empty"):
        validate(parse_event(event("incoming/demo/e.csv", size=0)), ALLOWED)


@pytest.mark.parametrize(
    "key", ["incoming/demo/data.xlsx", "incoming/demo/noext", "incoming/demo/archive.tar.gz"]
)
def test_unsupported_extension(key: str) -> None:
    with pytest.raises(UnsupportedFileType, match=r"\.csv, \.tsv, \.zip"):
        validate(parse_event(event(key)), ALLOWED)


def test_extension_is_case_insensitive_and_model_returned() -> None:
    assert validate(parse_event(event("incoming/Demo Model/DATA.CSV")), ALLOWED) == "Demo Model"
    assert parse_event(event("incoming/demo/a.b.TSV")).extension == ".tsv"
    assert parse_event(event("incoming/demo/sub/f.csv")).filename == "f.csv"


def test_ordering_key_sorts_by_time_then_sequencer() -> None:
    def source(time: str, sequencer: str) -> SourceObject:
        return SourceObject("b", "k", None, "e", 1, sequencer, time)

    assert (
        source("2024-01-01T00:00:01Z", "0A").ordering_key()
        > source("2024-01-01T00:00:00Z", "FF").ordering_key()
    )
    assert (
        source("2024-01-01T00:00:00Z", "0062E99A88DC407461").ordering_key()
        > source("2024-01-01T00:00:00Z", "0062E99A88DC407460").ordering_key()
    )
    # S3 sequencers of different lengths compare after right-padding with zeros.
    assert (
        source("2024-01-01T00:00:00Z", "0062E99A88DC4075").ordering_key()
        > source("2024-01-01T00:00:00Z", "0062E99A88DC407460").ordering_key()
    )
    # The same instant written differently is the same instant.
    assert (
        source("2024-01-01T00:00:00Z", "01").ordering_key()
        == source("2024-01-01T00:00:00.000+00:00", "01").ordering_key()
    )


def test_ordering_key_breaks_same_second_ties_by_arrival() -> None:
    """moto (and S3 for different keys) give no usable order within one second: arrival decides."""
    first = SourceObject("b", "incoming/m/a.csv", None, "e", 1, "617F08299329D189", "2024-01-01T00:00:00Z")
    second = SourceObject("b", "incoming/m/b.csv", None, "e", 1, "617F08299329D189", "2024-01-01T00:00:00Z")
    assert second.ordering_key("2024-01-01T00:00:00.500000Z") > first.ordering_key(
        "2024-01-01T00:00:00.200000Z"
    )
    # The event time still comes first.
    assert first.ordering_key("2024-01-01T00:00:01.000000Z") < SourceObject(
        "b", "k", None, "e", 1, "00", "2024-01-01T00:00:01Z"
    ).ordering_key("2024-01-01T00:00:01.000000Z")
