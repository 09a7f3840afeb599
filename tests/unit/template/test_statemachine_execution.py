"""Run statemachine/retrain.asl.json in moto's Step Functions interpreter with scripted Lambda answers.

The definition is the real file with the template's placeholders filled in; SNS is moto's. Each Lambda
task is answered by a script per function (a return value, or an error of a given name), so every path of
the graph runs: success with and without switch, duplicates, transient retries, caught failures, job
failure and deadline, and notifications that cannot be published.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.template.scripted_sfn import (
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_DELAY,
    Answer,
    FunctionError,
    Run,
    deployed,
    runner,
)


def upload_answer(*, duplicate: bool = False, auto_switch: bool = False) -> Callable[[dict[str, Any]], Any]:
    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        obj = payload["event"]["detail"]["object"]
        return {
            "source": {
                "bucket": payload["event"]["detail"]["bucket"]["name"],
                "key": obj["key"],
                "version_id": obj["version-id"],
                "etag": obj["etag"],
                "size": obj["size"],
                "sequencer": obj["sequencer"],
                "event_time": payload["event"]["time"],
            },
            "job": {
                "model": "demo",
                "retrain_job_id": "rj-1",
                "filename": "sample.csv",
                "uploaded_at": "2024-06-01T09:15:31Z",
                "auto_switch": auto_switch,
            },
            "poll": {
                "wait_seconds": 0,
                "polls": 0,
                "started_at": "2024-06-01T09:15:31Z",
                "deadline_at": "2024-06-02T09:15:31Z",
                "status": None,
                "state": "running",
            },
            "duplicate": duplicate,
            "execution_id": payload["execution_id"],
        }

    return answer


def poll_answer(state: str, status: str) -> Callable[[dict[str, Any]], Any]:
    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        return {
            **payload["poll"],
            "wait_seconds": 0,
            "polls": payload["poll"]["polls"] + 1,
            "checked_at": "2024-06-01T09:20:00Z",
            "status": status,
            "state": state,
            "message": "Row count out of range" if state == "failed" else None,
            "model_id": 7 if state == "finished" else None,
        }

    return answer


ARCHIVE = {
    "result_key": "results/demo/rj-1/retrain_result.zip",
    "summary_key": "results/demo/rj-1/summary.json",
    "size": 1234,
    "entries": ["metrics.json"],
}
RUNNING = poll_answer("running", "job_running")
FINISHED = poll_answer("finished", "job_finished")


def record_answer(payload: dict[str, Any]) -> dict[str, Any]:
    state = payload["state"]
    return {
        "failure_key": "failed/demo/sample.csv.json",
        "error": state["error"]["Error"],
        "message": "scripted",
        "step": state["failed_step"],
        "notification": {
            "error": state["error"]["Error"],
            "message": "scripted",
            "failure_record": "s3://bucket/failed/demo/sample.csv.json",
        },
    }


@pytest.fixture(scope="module")
def aws(retrain_text, render_asl):
    with deployed(retrain_text, render_asl, "retrain") as deployment:
        yield deployment


@pytest.fixture
def run_retrain(monkeypatch, aws, load_event, request):
    """``run_retrain(scripts, topic_exists=True)`` runs one execution of the real definition."""
    run = runner(monkeypatch, aws, request.node.name)
    event = load_event("object-created.json")

    def run_once(scripts: dict[str, list[Answer]], *, topic_exists: bool = True) -> Run:
        return run(scripts, event, topic_exists=topic_exists)

    return run_once


def single_notification(run: Run, outcome: str) -> dict[str, Any]:
    (notification,) = run.notifications
    assert notification["MessageAttributes"]["outcome"]["Value"] == outcome
    return json.loads(notification["Message"])


def test_success_with_switch_passes_the_contract_shapes(run_retrain, load_event):
    run = run_retrain(
        {
            "Upload": [upload_answer(auto_switch=True)],
            "CheckStatus": [RUNNING, RUNNING, FINISHED],
            "Archive": [ARCHIVE],
            "SwitchModel": [{"switched": True, "reason": "the retrained model was published"}],
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [
        "Upload",
        "CheckStatus",
        "CheckStatus",
        "CheckStatus",
        "Archive",
        "SwitchModel",
    ]
    (upload,) = run.functions.called("Upload")
    assert upload == {"event": load_event("object-created.json"), "execution_id": run.execution_arn}
    checks = run.functions.called("CheckStatus")
    assert all(set(check) == {"job", "poll"} for check in checks)
    assert [check["poll"]["polls"] for check in checks] == [0, 1, 2]
    (archive,) = run.functions.called("Archive")
    assert set(archive) == {"source", "job", "poll", "execution_id"}
    assert archive["execution_id"] == run.execution_arn and archive["poll"]["state"] == "finished"
    (switch,) = run.functions.called("SwitchModel")
    assert switch["archive"] == ARCHIVE and switch["source"] == archive["source"]
    assert run.output["switch"]["switched"] is True
    assert run.output["archive"] == ARCHIVE
    assert run.output["notification"]["message_id"]
    message = single_notification(run, "SUCCEEDED")
    assert message["archive"]["result_key"] == ARCHIVE["result_key"]
    assert message["switch"] == {"switched": True, "reason": "the retrained model was published"}


def test_success_without_switch_skips_the_switch(run_retrain):
    run = run_retrain(
        {"Upload": [upload_answer(auto_switch=False)], "CheckStatus": [FINISHED], "Archive": [ARCHIVE]}
    )
    assert run.status == "SUCCEEDED"
    assert run.functions.order == ["Upload", "CheckStatus", "Archive"]
    assert "switch" not in run.output
    single_notification(run, "SUCCEEDED")


def test_a_duplicate_event_ends_quietly(run_retrain):
    run = run_retrain({"Upload": [upload_answer(duplicate=True)]})
    assert run.status == "SUCCEEDED"
    assert run.functions.order == ["Upload"]
    assert run.notifications == []


def test_transient_errors_are_retried_with_bounded_backoff(run_retrain):
    run = run_retrain(
        {
            "Upload": [FunctionError("ServerError"), upload_answer(auto_switch=True)],
            "CheckStatus": [FunctionError("RateLimited"), FINISHED],
            "Archive": [FunctionError("Lambda.TooManyRequestsException"), ARCHIVE],
            "SwitchModel": [FunctionError("ModelSwitchBusy"), {"switched": True, "reason": "published"}],
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [
        *["Upload"] * 2,
        *["CheckStatus"] * 2,
        *["Archive"] * 2,
        *["SwitchModel"] * 2,
    ]
    assert len(run.retry_delays) == 4
    assert all(0 <= delay <= RETRY_MAX_DELAY for delay in run.retry_delays)


def test_a_permanent_upload_error_is_recorded_and_notified_once(run_retrain, load_event):
    run = run_retrain(
        {"Upload": [FunctionError("ApiKeyInvalid", "invalid_api_key.")], "RecordFailure": [record_answer]}
    )
    assert run.status == "FAILED"
    assert run.description["error"] == "RetrainFailed"
    assert run.functions.order == ["Upload", "RecordFailure"]
    (record,) = run.functions.called("RecordFailure")
    assert record["execution_id"] == run.execution_arn
    state = record["state"]
    assert state["failed_step"] == "Upload"
    assert state["error"]["Error"] == "ApiKeyInvalid"
    assert json.loads(state["error"]["Cause"])["errorMessage"] == "invalid_api_key."
    assert state["detail"] == load_event("object-created.json")["detail"]  # the raw event is still there
    message = single_notification(run, "FAILED")
    # The notification is RecordFailure's, never the state: no Cause, no raw event.
    assert message == record_answer(record)["notification"]


def test_transient_errors_that_persist_are_reported(run_retrain):
    run = run_retrain({"Upload": [FunctionError("ConnectionFailed")], "RecordFailure": [record_answer]})
    assert run.status == "FAILED"
    assert run.functions.order == ["Upload"] * (1 + RETRY_MAX_ATTEMPTS) + ["RecordFailure"]
    assert run.functions.called("RecordFailure")[0]["state"]["error"]["Error"] == "ConnectionFailed"


@pytest.mark.parametrize(
    ("poll", "error"),
    [
        (poll_answer("failed", "job_failed"), "JobFailed"),
        (poll_answer("deadline", "job_running"), "JobDeadlineExceeded"),
    ],
)
def test_job_outcomes_take_the_failure_path(run_retrain, poll, error):
    run = run_retrain(
        {"Upload": [upload_answer()], "CheckStatus": [RUNNING, poll], "RecordFailure": [record_answer]}
    )
    assert run.status == "FAILED"
    assert run.functions.order == ["Upload", "CheckStatus", "CheckStatus", "RecordFailure"]
    state = run.functions.called("RecordFailure")[0]["state"]
    assert (state["failed_step"], state["error"]["Error"]) == ("CheckStatus", error)
    assert json.loads(state["error"]["Cause"])["errorType"] == error
    assert state["poll"]["status"] in {"job_failed", "job_running"}
    single_notification(run, "FAILED")


@pytest.mark.parametrize(
    ("scripts", "step"),
    [
        ({"CheckStatus": [FunctionError("RetrainJobNotFound")]}, "CheckStatus"),
        ({"CheckStatus": [FINISHED], "Archive": [FunctionError("UrlExpired")]}, "Archive"),
        (
            {
                "CheckStatus": [FINISHED],
                "Archive": [ARCHIVE],
                "SwitchModel": [FunctionError("RetrainJobNotFinished")],
            },
            "SwitchModel",
        ),
    ],
)
def test_each_step_failure_names_its_step(run_retrain, scripts, step):
    run = run_retrain(
        {"Upload": [upload_answer(auto_switch=True)], "RecordFailure": [record_answer], **scripts}
    )
    assert run.status == "FAILED"
    assert run.functions.order[-1] == "RecordFailure"
    assert run.functions.called("RecordFailure")[0]["state"]["failed_step"] == step
    single_notification(run, "FAILED")


def test_a_failure_record_that_cannot_be_written_is_still_notified(run_retrain):
    run = run_retrain(
        {"Upload": [FunctionError("ModelNotConfigured")], "RecordFailure": [FunctionError("AccessDenied")]}
    )
    assert run.status == "FAILED"
    message = single_notification(run, "FAILED")
    assert message["error"] == "ModelNotConfigured"
    assert message["failure_record"] is None and message["execution_id"] == run.execution_arn
    assert "Cause" not in json.dumps(message) and "AccessDenied" not in json.dumps(message)


def test_a_success_notification_that_cannot_be_published_keeps_the_success(run_retrain):
    run = run_retrain(
        {"Upload": [upload_answer()], "CheckStatus": [FINISHED], "Archive": [ARCHIVE]}, topic_exists=False
    )
    assert run.status == "SUCCEEDED"
    assert run.output["archive"] == ARCHIVE
    assert run.output["notification_error"]["Error"].startswith("SNS.")
    assert "notification" not in run.output


def test_a_failure_notification_that_cannot_be_published_still_fails(run_retrain):
    run = run_retrain(
        {"Upload": [FunctionError("UserDeleted")], "RecordFailure": [record_answer]}, topic_exists=False
    )
    assert run.status == "FAILED"
    assert run.description["error"] == "RetrainFailed"


# Where AWS is stricter than moto


def test_a_key_outside_incoming_ends_at_once_without_record_or_notification(run_retrain):
    """However the rule is written, an object the pipeline wrote (results/, failed/) cannot loop."""
    run = run_retrain({"Upload": [FunctionError("KeyOutsidePrefix", "results/m/j/summary.json")]})
    assert run.status == "FAILED"
    assert run.description["error"] == "KeyOutsidePrefix"
    assert run.functions.order == ["Upload"]  # no retry, no RecordFailure
    assert run.notifications == []


@pytest.mark.parametrize("timeout_error", ["Sandbox.Timedout", "Lambda.Unknown"])
def test_read_only_steps_killed_at_their_timeout_are_retried(run_retrain, timeout_error):
    run = run_retrain(
        {
            "Upload": [upload_answer()],
            "CheckStatus": [FunctionError(timeout_error), FINISHED],
            "Archive": [FunctionError(timeout_error), ARCHIVE],
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == ["Upload", "CheckStatus", "CheckStatus", "Archive", "Archive"]


@pytest.mark.parametrize("step", ["Upload", "SwitchModel"])
def test_steps_with_side_effects_are_not_rerun_after_a_timeout(run_retrain, step):
    scripts: dict[str, list[Answer]] = {
        "Upload": [upload_answer(auto_switch=True)],
        "CheckStatus": [FINISHED],
        "Archive": [ARCHIVE],
        "RecordFailure": [record_answer],
    }
    scripts[step] = [FunctionError("Sandbox.Timedout")]
    run = run_retrain(scripts)
    assert run.status == "FAILED"
    assert run.functions.order.count(step) == 1
    assert run.functions.called("RecordFailure")[0]["state"]["failed_step"] == step


@pytest.mark.parametrize(
    ("step", "error"), [("Upload", "IdempotencyAlreadyInProgressError"), ("SwitchModel", "ModelSwitchBusy")]
)
def test_contention_outlasts_the_generic_retry_budget(run_retrain, step, error):
    waits = RETRY_MAX_ATTEMPTS + 3
    scripts: dict[str, list[Answer]] = {
        "Upload": [upload_answer(auto_switch=True)],
        "CheckStatus": [FINISHED],
        "Archive": [ARCHIVE],
        "SwitchModel": [{"switched": True, "reason": "published"}],
    }
    scripts[step] = [*[FunctionError(error)] * waits, scripts[step][0]]
    run = run_retrain(scripts)
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order.count(step) == waits + 1
