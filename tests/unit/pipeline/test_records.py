"""Summaries and failure records (builders, keys, ASL error parsing); summary.json says why a model was not
switched, also when switching is off for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from retrain_pipeline.archive import ArchivedResult, build_summary
from retrain_pipeline.failures import Failure, StepError, build_failure_record, explain, scrub
from retrain_pipeline.keys import failure_key, summary_key
from retrain_pipeline.source import SourceObject

SOURCE = SourceObject(
    "bucket", "incoming/demo/sub/a b+c.csv", "v1", "etag", 1234, "01", "2024-05-01T12:00:00Z"
)
JOB = {
    "model": "demo",
    "retrain_job_id": "job-1",
    "filename": "a b+c.csv",
    "uploaded_at": "2024-05-01T12:00:01.000Z",
    "auto_switch": True,
}
POLL = {
    "polls": 3,
    "status": "job_finished",
    "state": "finished",
    "checked_at": "2024-05-01T12:10:00.000Z",
    "message": None,
    "model_id": 77,
}
NOW = datetime(2024, 5, 1, 12, 11, tzinfo=UTC)


def test_failure_keys() -> None:
    assert failure_key("incoming/demo/sub/a b+c.csv") == "failed/demo/sub/a b+c.csv.json"
    assert failure_key("incoming/loose.csv") == "failed/_unknown/loose.csv.json"
    assert failure_key("incoming/demo/") == "failed/demo/_folder_marker.json"
    assert failure_key("incoming/demo/sub/") == "failed/demo/sub.json"


def test_failure_key_of_a_1024_byte_key_stays_within_s3s_limit() -> None:
    key = "incoming/demo/" + "データ" * 111 + ".csv"
    assert len(key.encode()) <= 1024
    long_key = "incoming/demo/" + "x" * (1024 - len("incoming/demo/") - 4) + ".csv"
    assert len(long_key.encode()) == 1024
    for source_key in (key, long_key):
        fitted = failure_key(source_key)
        assert len(fitted.encode()) <= 1024
        assert fitted.startswith("failed/demo/") and fitted.endswith(".json")
    assert failure_key(long_key) != failure_key(long_key[:-5] + "y.csv")


def _summary(job: dict[str, Any] = JOB) -> dict[str, Any]:
    """The summary right after archiving the job's results file."""
    result = ArchivedResult(
        "retrain_result.zip", "results/demo/job-1/retrain_result.zip", 99, ["metrics.json"]
    )
    return build_summary(
        source=SOURCE, job=job, poll=POLL, execution_id="arn:exec", result=result, archived_at=NOW
    )


def test_summary_content() -> None:
    summary = _summary()
    assert summary_key("demo", "job-1") == "results/demo/job-1/summary.json"
    assert summary["source"] == SOURCE.to_dict()
    assert (summary["retrain_job_id"], summary["model_id"], summary["status"]) == (
        "job-1",
        77,
        "job_finished",
    )
    assert summary["result"] == {
        "key": "results/demo/job-1/retrain_result.zip",
        "filename": "retrain_result.zip",
        "size": 99,
        "entries": ["metrics.json"],
    }
    assert summary["timings"] == {
        "event_time": "2024-05-01T12:00:00Z",
        "uploaded_at": "2024-05-01T12:00:01.000Z",
        "finished_at": "2024-05-01T12:10:00.000Z",
        "archived_at": "2024-05-01T12:11:00.000Z",
    }
    assert summary["polls"] == 3
    assert summary["switched"] is False
    json.dumps(summary)


def test_switching_off_is_stated_with_its_reason_in_the_summary() -> None:
    summary = _summary({**JOB, "auto_switch": False})
    assert summary["switched"] is False
    assert summary["switch"] == {"switched": False, "reason": "switching is off for this model"}


def test_switching_on_leaves_the_summarys_switch_outcome_to_the_switch_step() -> None:
    summary = _summary({**JOB, "auto_switch": True})
    assert summary["switched"] is False
    assert summary["switch"] is None


def test_lambda_error_cause_is_parsed_without_stack_trace() -> None:
    cause = json.dumps(
        {
            "errorMessage": "invalid_api_key. (4001000204 PREDA_EXTERNAL_BAD_REQUEST): no such key",
            "errorType": "ApiKeyInvalid",
            "requestId": "r",
            "stackTrace": ['  File "/var/task/app.py", line 1, in handler\n'],
        }
    )
    error = StepError.from_asl({"Error": "ApiKeyInvalid", "Cause": cause})
    assert error.name == "ApiKeyInvalid"
    assert error.message.startswith("invalid_api_key.")
    assert "stackTrace" not in error.message and "app.py" not in error.message


@pytest.mark.parametrize(
    ("error", "name", "message"),
    [
        ({"Error": "States.Timeout", "Cause": "Task timed out"}, "States.Timeout", "Task timed out"),
        (
            {"Error": "States.TaskFailed", "Cause": '{"errorType": "JobFailed", "errorMessage": "m"}'},
            "JobFailed",
            "m",
        ),
        ({"Error": "X"}, "X", "X (no message)"),
        (None, "Unknown", "the step failed without an error description"),
    ],
)
def test_other_error_shapes(error: dict[str, str] | None, name: str, message: str) -> None:
    parsed = StepError.from_asl(error)
    assert (parsed.name, parsed.message) == (name, message)


def test_scrub_removes_signatures_and_keys() -> None:
    text = (
        "PUT https://bucket.s3.amazonaws.com/up/a.csv?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA "
        "headers {'x-api-key': 'demo-key'} secret-key-123"
    )
    cleaned = scrub(text, ("secret-key-123",))
    assert "deadbeef" not in cleaned and "AKIA" not in cleaned
    assert "demo-key" not in cleaned and "secret-key-123" not in cleaned
    assert "https://bucket.s3.amazonaws.com/up/a.csv" in cleaned


def test_documented_rows_are_explained() -> None:
    assert explain("ApiKeyInvalid")["documented_error"] == {
        "code": 4001000204,
        "error": "PREDA_EXTERNAL_BAD_REQUEST",
        "message": "invalid_api_key.",
        "reason": "the API key does not exist",
    }
    assert (
        explain("ConfigurationFileNotFound")["documented_error"]["error"]
        == "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR"
    )
    assert explain("BadZipLayout")["documented_error"] is None
    assert "train_src" in explain("BadZipLayout")["advice"]
    assert explain("Lambda.Unknown")["advice"].startswith("The step failed in AWS")


def test_failure_record_content() -> None:
    failure = Failure(
        StepError("JobFailed", "Retrain job job-1 of model 'demo' ended with status 'job_failed': bad"),
        "CheckStatus",
        "arn:aws:states:us-east-1:1:execution:retrain:abc",
        SOURCE,
        SOURCE.key,
    )
    record = build_failure_record(failure, job=JOB, poll=POLL, recorded_at=NOW)
    assert record["error"] == "JobFailed"
    assert record["step"] == "CheckStatus"
    assert record["model"] == "demo"
    assert record["retrain_job_id"] == "job-1"
    assert record["source"] == SOURCE.to_dict()
    assert record["timings"]["recorded_at"] == "2024-05-01T12:11:00.000Z"
    assert record["replay"]["command"] == (
        "aws s3 cp 's3://bucket/incoming/demo/sub/a b+c.csv' 's3://bucket/incoming/demo/sub/a b+c.csv' "
        "--metadata-directive REPLACE"
    )
    assert "advice" in record and "documented_error" in record


def test_failure_record_without_source() -> None:
    failure = Failure(StepError("ValueError", "not an event"), "Upload", "arn", None, None)
    record = build_failure_record(failure, job=None, poll=None, recorded_at=NOW)
    assert record["source"] is None and record["model"] is None
    assert "Upload the file again" in record["replay"]["how"]
