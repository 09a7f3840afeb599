"""CheckStatus handler: running, finished, failed, deadline, documented errors."""

from __future__ import annotations

from typing import Any

import pytest
from prediction_one import errors as p1_errors


def test_running_then_finished(stack: Any) -> None:
    stack.emulator.admin.set_settings(job_seconds=30)
    state = stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))
    state = stack.check(state)
    poll = state["poll"]
    fields = ["wait_seconds", "polls", "started_at", "deadline_at", "checked_at", "status", "state"]
    assert set(poll) == {*fields, "message", "model_id"}
    assert (poll["state"], poll["polls"]) == ("running", 1)
    assert poll["status"] in {"job_running", "job_created"}
    assert 1 <= poll["wait_seconds"] <= 5

    stack.emulator.admin.advance_clock(60)
    state = stack.wait_finished(state)
    assert state["poll"]["state"] == "finished"
    assert state["poll"]["status"] == "job_finished"
    assert state["poll"]["polls"] == 2
    assert isinstance(state["poll"]["model_id"], int)


def test_failed_job_is_reported_with_its_message(stack: Any) -> None:
    stack.emulator.admin.set_settings(outcome="failed", failure_message="Too few rows for column income.")
    state = stack.wait_finished(stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes())))
    assert state["poll"]["state"] == "failed"
    assert state["poll"]["status"] == "job_failed"
    assert state["poll"]["message"] == "Too few rows for column income."


def test_custom_failure_statuses(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILURE_STATUSES", "canceled")
    stack.emulator.admin.set_settings(outcome="failed")
    state = stack.wait_finished(stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes())))
    assert state["poll"]["state"] == "running"  # job_failed is not a failure status any more


def test_deadline(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.emulator.admin.set_settings(outcome="never")
    state = stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))
    state["poll"]["deadline_at"] = state["poll"]["started_at"]  # a deadline already behind us
    state = stack.check(state)
    assert state["poll"]["state"] == "deadline"
    assert state["poll"]["status"] in {"job_running", "job_created"}


def test_deleted_job_is_the_documented_row(stack: Any) -> None:
    state = stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))
    stack.emulator.admin.delete_job(state["job"]["retrain_job_id"])
    with pytest.raises(p1_errors.PredictionOneError) as deleted:
        stack.check(state)
    assert type(deleted.value).__name__ in {"JobDeleted", "RetrainJobNotFound"}
    assert deleted.value.api_message in {"This job may be deleted.", "Not found retrain job."}


def test_missing_field_names_it(stack: Any) -> None:
    with pytest.raises(ValueError, match="'poll'"):
        stack.invoke("check_status", {"job": {"model": "demo", "retrain_job_id": "x"}})
