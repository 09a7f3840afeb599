"""RecordFailure handler: failure records for every failed step, named in plain words."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prediction_one import errors as p1_errors
from retrain_pipeline.errors import (
    BadZipLayout,
    EmptyObject,
    FolderMarker,
    KeyOutsideModelFolder,
    ModelNotConfigured,
    SecretMalformed,
    UnsupportedFileType,
)


@pytest.mark.parametrize(
    ("key", "body", "error", "record_key"),
    [
        ("incoming/demo/empty.csv", b"", EmptyObject, "failed/demo/empty.csv.json"),
        ("incoming/demo/", b"", FolderMarker, "failed/demo/_folder_marker.json"),
        ("incoming/demo/r.xlsx", b"x", UnsupportedFileType, "failed/demo/r.xlsx.json"),
        ("incoming/loose.csv", b"a,b\n", KeyOutsideModelFolder, "failed/_unknown/loose.csv.json"),
        ("incoming/nobody/a.csv", b"a,b\n", ModelNotConfigured, "failed/nobody/a.csv.json"),
        ("incoming/demo/x.zip", b"PK nope", BadZipLayout, "failed/demo/x.zip.json"),
    ],
)
def test_upload_failures_are_recorded(
    stack: Any, key: str, body: bytes, error: type, record_key: str
) -> None:
    state, raised = stack.failed_upload(key, body)
    assert isinstance(raised, error)
    execution = stack.execution_arn("failed-run")
    output = stack.record_failure(state, execution)
    notification = output.pop("notification")
    assert output == {
        "failure_key": record_key,
        "error": error.__name__,
        "message": str(raised),
        "step": "Upload",
        "execution_id": execution,
    }
    assert notification["failure_record"] == f"s3://{stack.bucket}/{record_key}"
    assert notification["file"] == f"s3://{stack.bucket}/{key}"
    assert (notification["error"], notification["step"]) == (error.__name__, "Upload")
    assert notification["message"] == str(raised)
    assert notification["advice"]
    record = stack.read_json(record_key)
    assert record["error"] == error.__name__
    assert record["message"] == str(raised)
    assert record["step"] == "Upload"
    assert record["execution_id"] == execution
    assert record["source"]["key"] == key
    assert record["advice"]
    assert "stackTrace" not in json.dumps(record)


def test_documented_api_error_is_named_with_its_row(stack: Any) -> None:
    stack.set_secret({"demo": "wrong-key"})
    state, raised = stack.failed_upload("incoming/demo/a b.csv", stack.csv_bytes())
    assert isinstance(raised, p1_errors.ApiKeyInvalid)
    output = stack.record_failure(state)
    record = stack.read_json(output["failure_key"])
    assert output["failure_key"] == "failed/demo/a b.csv.json"
    assert record["documented_error"] == {
        "code": 4001000204,
        "error": "PREDA_EXTERNAL_BAD_REQUEST",
        "message": "invalid_api_key.",
        "reason": "the API key does not exist",
    }
    assert "secret" in record["advice"].lower()
    assert "wrong-key" not in json.dumps(record)
    assert record["replay"]["command"].startswith("aws s3 cp 's3://")


def test_job_failure_record_carries_the_jobs_message(stack: Any) -> None:
    stack.emulator.admin.set_settings(outcome="failed", failure_message="Column 'target' is missing.")
    state = stack.wait_finished(stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes())))
    assert state["poll"]["state"] == "failed"
    # The JobFailed Pass state of the ASL, then CheckStatusFailed.
    state = stack.failed_with(state, "JobFailed", "Prediction One reported a failure status", "CheckStatus")
    output = stack.record_failure(state)
    record = stack.read_json(output["failure_key"])
    assert output["error"] == "JobFailed"
    assert "Column 'target' is missing." in output["message"]
    assert state["job"]["retrain_job_id"] in record["message"]
    assert record["retrain_job_id"] == state["job"]["retrain_job_id"]
    assert record["job_status"] == "job_failed"
    assert record["timings"]["uploaded_at"] == state["job"]["uploaded_at"]
    assert record["step"] == "CheckStatus"


def test_deadline_record(stack: Any) -> None:
    stack.emulator.admin.set_settings(outcome="never")
    state = stack.upload(stack.put("incoming/demo/slow.csv", stack.csv_bytes()))
    state["poll"]["deadline_at"] = state["poll"]["started_at"]
    state = stack.check(state)
    assert state["poll"]["state"] == "deadline"
    state = stack.failed_with(state, "JobDeadlineExceeded", "still running at its deadline", "CheckStatus")
    output = stack.record_failure(state)
    assert output["error"] == "JobDeadlineExceeded"
    assert "JOB_DEADLINE_HOURS" in output["message"]
    assert output["failure_key"] == "failed/demo/slow.csv.json"


def test_timeout_with_plain_text_cause(stack: Any) -> None:
    event = stack.put("incoming/demo/a.csv", stack.csv_bytes())
    state = {
        **event,
        "error": {"Error": "States.Timeout", "Cause": "Task timed out"},
        "failed_step": "Upload",
    }
    output = stack.record_failure(state)
    assert (output["error"], output["message"]) == ("States.Timeout", "Task timed out")


def test_unreadable_input_still_leaves_a_record(stack: Any) -> None:
    state = {"error": {"Error": "ValueError", "Cause": "not an event"}, "failed_step": "Upload"}
    output = stack.record_failure(state, stack.execution_arn("lost"))
    assert output["failure_key"] == "failed/_unknown/lost.json"
    assert stack.read_json(output["failure_key"])["source"] is None


def test_secret_malformed_record(stack: Any) -> None:
    stack.set_secret({"demo": {"apikey": "k-123"}})
    state, raised = stack.failed_upload("incoming/demo/a.csv", stack.csv_bytes())
    assert isinstance(raised, SecretMalformed)
    record = stack.read_json(stack.record_failure(state)["failure_key"])
    assert record["error"] == "SecretMalformed"
    assert "k-123" not in json.dumps(record)


def test_presigned_urls_in_a_cause_are_scrubbed(stack: Any) -> None:
    event = stack.put("incoming/demo/a.csv", stack.csv_bytes())
    message = "bad answer from https://h/x.zip?X-Amz-Signature=abc123&X-Amz-Credential=KEYID"
    state = stack.failed_with(event, "UnexpectedResponse", message, "Archive")
    output = stack.record_failure(state)
    text = json.dumps(stack.read_json(output["failure_key"]))
    assert "abc123" not in text and "KEYID" not in text
    assert "https://h/x.zip" in text


def test_metric_jobs_failed(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    state = {"error": {"Error": "X", "Cause": "y"}, "failed_step": "Upload"}
    stack.record_failure(state)
    out = capsys.readouterr().out
    assert any('"JobsFailed"' in line and "_aws" in line for line in out.splitlines())
