"""events/: the sample EventBridge events, one input per function, and the sample data files."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "events" / "data"
OBJECT_CREATED = [
    "object-created.json",
    "object-created-zip.json",
    "object-created-special-key.json",
    "retrain-execution-input.json",
]
SOURCE_KEYS = {"bucket", "key", "version_id", "etag", "size", "sequencer", "event_time"}
JOB_KEYS = {"model", "retrain_job_id", "filename", "accepted_at", "uploaded_at", "auto_switch"}
POLL_KEYS = {"wait_seconds", "polls", "started_at", "deadline_at", "status", "state"}
CHECKED_POLL_KEYS = POLL_KEYS | {"checked_at", "message", "model_id"}


def read_csv(name: str) -> list[list[str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize("name", OBJECT_CREATED)
def test_object_created_events_look_like_aws(load_event, name):
    event = load_event(name)
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (event["source"], event["detail-type"]) == ("aws.s3", "Object Created")
    detail = event["detail"]
    assert event["resources"] == [f"arn:aws:s3:::{detail['bucket']['name']}"]
    assert set(detail["object"]) == {"key", "size", "etag", "version-id", "sequencer"}
    assert detail["object"]["key"].startswith("incoming/")
    assert detail["reason"] in {"PutObject", "CompleteMultipartUpload", "CopyObject"}


def test_the_demo_event_describes_the_sample_file(load_event):
    obj = load_event("object-created.json")["detail"]["object"]
    data = (DATA / "sample.csv").read_bytes()
    assert obj["key"] == "incoming/demo/sample.csv"
    assert obj["size"] == len(data)
    assert obj["etag"] == hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_the_special_key_is_raw_not_url_encoded(load_event):
    key = load_event("object-created-special-key.json")["detail"]["object"]["key"]
    assert " " in key and "+" in key and not key.isascii()
    assert "%" not in key


def test_the_zip_event_is_a_zip(load_event):
    assert load_event("object-created-zip.json")["detail"]["object"]["key"].endswith(".zip")


def test_function_inputs_follow_the_contract(load_event):
    upload = load_event("upload.json")
    assert set(upload) == {"event", "execution_id"}
    assert upload["event"] == load_event("object-created.json")
    assert upload["execution_id"].startswith("arn:aws:states:") and ":execution:" in upload["execution_id"]

    check_status = load_event("check_status.json")
    assert set(check_status) == {"job", "poll"}
    assert set(check_status["job"]) == JOB_KEYS and set(check_status["poll"]) == POLL_KEYS
    assert check_status["poll"]["state"] == "running" and check_status["poll"]["polls"] == 0

    archive = load_event("archive.json")
    assert set(archive) == {"source", "job", "poll", "execution_id"}
    assert set(archive["source"]) == SOURCE_KEYS and set(archive["poll"]) == CHECKED_POLL_KEYS
    assert archive["poll"]["state"] == "finished"

    switch = load_event("switch_model.json")
    assert {"source", "job", "poll", "duplicate", "execution_id", "archive"} == set(switch)
    assert set(switch["archive"]) == {"result_key", "summary_key", "size", "entries"}
    prefix = f"results/{switch['job']['model']}/{switch['job']['retrain_job_id']}/"
    assert switch["archive"]["result_key"].startswith(prefix)
    assert switch["archive"]["summary_key"] == prefix + "summary.json"

    failure = load_event("record_failure.json")
    assert set(failure) == {"state", "execution_id"}
    assert {"error", "failed_step"} <= set(failure["state"])
    assert set(failure["state"]["error"]) == {"Error", "Cause"}


def test_sources_match_their_events(load_event):
    event = load_event("object-created.json")
    source = load_event("archive.json")["source"]
    obj = event["detail"]["object"]
    expected: dict[str, Any] = {
        "bucket": event["detail"]["bucket"]["name"],
        "key": obj["key"],
        "version_id": obj["version-id"],
        "etag": obj["etag"],
        "size": obj["size"],
        "sequencer": obj["sequencer"],
        "event_time": event["time"],
    }
    assert source == expected


def test_inputs_carry_no_secrets_or_presigned_urls():
    for path in (ROOT / "events").glob("*.json"):
        text = path.read_text(encoding="utf-8")
        for marker in ("X-Amz-Signature", "X-Amz-Credential", "upload_url", "download_url", "api_key"):
            assert marker not in text, f"{path.name} contains {marker}"


@pytest.mark.parametrize(
    ("name", "minimum_rows"), [("sample.csv", 300), ("train.csv", 200), ("eval.csv", 100)]
)
def test_sample_data_is_small_tabular_and_within_the_product_limits(name, minimum_rows):
    assert (DATA / name).stat().st_size < 100_000
    rows = read_csv(name)
    header, body = rows[0], rows[1:]
    assert header == read_csv("sample.csv")[0]
    assert 2 <= len(header) <= 200 and len(set(header)) == len(header)
    assert minimum_rows <= len(body) <= 1_000_000
    assert all(len(row) == len(header) for row in body)
    target = [row[header.index("churned")] for row in body]
    assert set(target) == {"yes", "no"}
    assert 0.1 < target.count("yes") / len(target) < 0.9


def test_train_and_eval_are_different_rows():
    train = {tuple(row) for row in read_csv("train.csv")[1:]}
    evaluation = {tuple(row) for row in read_csv("eval.csv")[1:]}
    assert len(train & evaluation) < 0.05 * len(evaluation)
