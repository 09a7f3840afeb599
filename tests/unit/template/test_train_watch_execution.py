"""Run statemachine/train_watch.asl.json in moto's Step Functions interpreter with scripted Lambda answers.

Each Lambda task is answered by a script per state (a return value, or an error of a given name), so every
path of the graph runs: polling to success, a run that is already finished, duplicates, transient retries,
caught failures, failed and overdue runs, and notifications that cannot be published.
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

DIRECT_INPUT = {"model": "demo", "external_process_id": "ep-1"}


def step_of(function: str, payload: dict[str, Any]) -> str:
    """The state that invoked ``function``: each watcher function serves the state of its name."""
    return function.removesuffix("Function")


def poll(state: str, status: str, polls: int = 1) -> dict[str, Any]:
    return {
        "wait_seconds": 0,
        "polls": polls,
        "started_at": "2024-06-03T14:02:13.412Z",
        "deadline_at": "2024-06-04T14:02:13.412Z",
        "checked_at": "2024-06-03T14:03:00.000Z",
        "status": status,
        "state": state,
        "created_datetime": "2024-06-03T13:40:02Z",
        "updated_datetime": "2024-06-03T14:02:00Z",
    }


def start_answer(state: str = "running", *, duplicate: bool = False) -> Callable[[dict[str, Any]], Any]:
    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        request = payload["request"]
        source = None
        if "detail" in request:
            obj = request["detail"]["object"]
            source = {
                "bucket": request["detail"]["bucket"]["name"],
                "key": obj["key"],
                "version_id": obj["version-id"],
            }
        return {
            "source": source,
            "training": {
                "model": "demo",
                "external_process_id": "ep-1",
                "requested_at": "2024-06-03T14:02:13.412Z",
            },
            "poll": poll(state, {"running": "running", "finished": "finished"}.get(state, state)),
            "duplicate": duplicate,
            "execution_id": payload["execution_id"],
        }

    return answer


def check_answer(state: str, status: str) -> Callable[[dict[str, Any]], Any]:
    return lambda payload: poll(state, status, payload["poll"]["polls"] + 1)


RUNNING = check_answer("running", "running")
FINISHED = check_answer("finished", "finished")
ARCHIVE = {
    "result_key": "results/demo/training/ep-1/train_result.zip",
    "summary_key": "results/demo/training/ep-1/summary.json",
    "size": 679,
    "entries": ["metrics.json"],
    "already_archived": False,
}


def record_answer(payload: dict[str, Any]) -> dict[str, Any]:
    state = payload["state"]
    return {
        "failure_key": "failed/demo/churn-2024-06.json.json",
        "error": state["error"]["Error"],
        "message": "scripted",
        "step": state["failed_step"],
        "notification": {
            "error": state["error"]["Error"],
            "message": "scripted",
            "failure_record": "s3://bucket/failed/demo/churn-2024-06.json.json",
        },
        "execution_id": payload["execution_id"],
    }


@pytest.fixture(scope="module")
def aws(state_machine_sources, render_asl):
    text = state_machine_sources["TrainWatchStateMachine"][1]
    with deployed(text, render_asl, "train-watch") as deployment:
        yield deployment


@pytest.fixture
def run_watch(monkeypatch, aws, load_event, request):
    """``run_watch(scripts, execution_input=None, topic_exists=True)``: one run of the real definition."""
    run = runner(monkeypatch, aws, request.node.name, step_of)

    def run_once(
        scripts: dict[str, list[Answer]], execution_input: Any = None, *, topic_exists: bool = True
    ) -> Run:
        if execution_input is None:
            execution_input = load_event("training-object-created.json")
        return run(scripts, execution_input, topic_exists=topic_exists)

    return run_once


def single_notification(run: Run, outcome: str) -> dict[str, Any]:
    (notification,) = run.notifications
    assert notification["MessageAttributes"]["outcome"]["Value"] == outcome
    assert notification["MessageAttributes"]["workflow"]["Value"] == "training"
    return json.loads(notification["Message"])


def test_a_running_training_is_polled_then_archived(run_watch, load_event):
    run = run_watch(
        {"StartWatch": [start_answer()], "CheckTraining": [RUNNING, FINISHED], "ArchiveTraining": [ARCHIVE]}
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == ["StartWatch", "CheckTraining", "CheckTraining", "ArchiveTraining"]
    (start,) = run.functions.called("StartWatch")
    assert start == {"request": load_event("training-object-created.json"), "execution_id": run.execution_arn}
    checks = run.functions.called("CheckTraining")
    assert all(set(check) == {"training", "poll"} for check in checks)
    assert [check["poll"]["polls"] for check in checks] == [1, 2]
    (archive,) = run.functions.called("ArchiveTraining")
    assert set(archive) == {"source", "training", "poll", "execution_id"}
    assert archive["poll"]["state"] == "finished" and archive["execution_id"] == run.execution_arn
    assert run.output["archive"] == ARCHIVE
    message = single_notification(run, "SUCCEEDED")
    assert message["archive"]["result_key"] == ARCHIVE["result_key"]
    assert message["training"]["external_process_id"] == "ep-1"


def test_an_already_finished_training_is_archived_without_waiting(run_watch):
    run = run_watch({"StartWatch": [start_answer("finished")], "ArchiveTraining": [ARCHIVE]}, DIRECT_INPUT)
    assert run.status == "SUCCEEDED"
    assert run.functions.order == ["StartWatch", "ArchiveTraining"]
    assert run.functions.called("StartWatch")[0]["request"] == DIRECT_INPUT
    assert run.functions.called("ArchiveTraining")[0]["source"] is None
    single_notification(run, "SUCCEEDED")


def test_a_duplicate_event_ends_quietly(run_watch):
    run = run_watch({"StartWatch": [start_answer(duplicate=True)]})
    assert run.status == "SUCCEEDED"
    assert run.functions.order == ["StartWatch"]
    assert run.notifications == []


def test_transient_errors_are_retried_with_bounded_backoff(run_watch):
    run = run_watch(
        {
            "StartWatch": [FunctionError("IdempotencyAlreadyInProgressError"), start_answer()],
            "CheckTraining": [FunctionError("RateLimited"), FINISHED],
            "ArchiveTraining": [FunctionError("ConnectionFailed"), ARCHIVE],
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [*["StartWatch"] * 2, *["CheckTraining"] * 2, *["ArchiveTraining"] * 2]
    assert len(run.retry_delays) == 3
    assert all(0 <= delay <= RETRY_MAX_DELAY for delay in run.retry_delays)


@pytest.mark.parametrize(
    ("scripts", "step", "error"),
    [
        ({"StartWatch": [FunctionError("BadTrainingRequest")]}, "StartWatch", "BadTrainingRequest"),
        (
            {"StartWatch": [FunctionError("UserDeleted", "This user may be deleted.")]},
            "StartWatch",
            "UserDeleted",
        ),
        (
            {"StartWatch": [start_answer()], "CheckTraining": [FunctionError("BadRequest")]},
            "CheckTraining",
            "BadRequest",
        ),
        (
            {"StartWatch": [start_answer("finished")], "ArchiveTraining": [FunctionError("UrlExpired")]},
            "ArchiveTraining",
            "UrlExpired",
        ),
        ({"StartWatch": [FunctionError("ServerError")]}, "StartWatch", "ServerError"),  # retries exhausted
    ],
)
def test_each_step_failure_is_recorded_and_notified_once(run_watch, scripts, step, error):
    run = run_watch({**scripts, "RecordFailure": [record_answer]})
    assert run.status == "FAILED"
    assert run.description["error"] == "TrainingWatchFailed"
    assert run.functions.order[-1] == "RecordFailure"
    (record,) = run.functions.called("RecordFailure")
    assert record["execution_id"] == run.execution_arn
    assert (record["state"]["failed_step"], record["state"]["error"]["Error"]) == (step, error)
    if step == "StartWatch":
        assert record["state"]["detail"]["object"]["key"].startswith("training/")  # the raw event is kept
    message = single_notification(run, "FAILED")
    assert message == record_answer(record)["notification"]


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (check_answer("failed", "failed"), "TrainingFailed"),
        (check_answer("deadline", "running"), "TrainingDeadlineExceeded"),
    ],
)
def test_run_outcomes_take_the_failure_path(run_watch, check, error):
    run = run_watch(
        {"StartWatch": [start_answer()], "CheckTraining": [RUNNING, check], "RecordFailure": [record_answer]}
    )
    assert run.status == "FAILED"
    assert run.functions.order == ["StartWatch", "CheckTraining", "CheckTraining", "RecordFailure"]
    state = run.functions.called("RecordFailure")[0]["state"]
    assert (state["failed_step"], state["error"]["Error"]) == ("CheckTraining", error)
    assert json.loads(state["error"]["Cause"])["errorType"] == error
    assert state["training"]["external_process_id"] == "ep-1"
    single_notification(run, "FAILED")


def test_a_failure_record_that_cannot_be_written_is_still_notified(run_watch):
    run = run_watch(
        {
            "StartWatch": [FunctionError("ModelNotConfigured")],
            "RecordFailure": [FunctionError("AccessDenied")],
        }
    )
    assert run.status == "FAILED"
    message = single_notification(run, "FAILED")
    assert message["error"] == "ModelNotConfigured"
    assert message["failure_record"] is None and message["execution_id"] == run.execution_arn
    assert "Cause" not in json.dumps(message) and "AccessDenied" not in json.dumps(message)


def test_a_success_notification_that_cannot_be_published_keeps_the_success(run_watch):
    run = run_watch(
        {"StartWatch": [start_answer("finished")], "ArchiveTraining": [ARCHIVE]}, topic_exists=False
    )
    assert run.status == "SUCCEEDED"
    assert run.output["archive"] == ARCHIVE
    assert run.output["notification_error"]["Error"].startswith("SNS.")


def test_a_failure_notification_that_cannot_be_published_still_fails(run_watch):
    run = run_watch(
        {"StartWatch": [FunctionError("UserDeleted")], "RecordFailure": [record_answer]}, topic_exists=False
    )
    assert run.status == "FAILED"
    assert run.description["error"] == "TrainingWatchFailed"


# Where AWS is stricter than moto


def test_a_key_outside_training_ends_at_once_without_record_or_notification(run_watch):
    run = run_watch({"StartWatch": [FunctionError("KeyOutsidePrefix", "failed/demo/x.json")]})
    assert run.status == "FAILED"
    assert run.description["error"] == "KeyOutsidePrefix"
    assert run.functions.order == ["StartWatch"]
    assert run.notifications == []


def test_read_only_steps_killed_at_their_timeout_are_retried(run_watch):
    run = run_watch(
        {
            "StartWatch": [start_answer()],
            "CheckTraining": [FunctionError("Sandbox.Timedout"), check_answer("finished", "finished")],
            "ArchiveTraining": [FunctionError("Lambda.Unknown"), ARCHIVE],
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [
        "StartWatch",
        "CheckTraining",
        "CheckTraining",
        "ArchiveTraining",
        "ArchiveTraining",
    ]


def test_a_duplicate_claim_in_progress_outlasts_the_generic_retry_budget(run_watch):
    waits = RETRY_MAX_ATTEMPTS + 3
    run = run_watch(
        {
            "StartWatch": [
                *[FunctionError("IdempotencyAlreadyInProgressError")] * waits,
                start_answer("finished"),
            ],
            "ArchiveTraining": [ARCHIVE],
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order.count("StartWatch") == waits + 1
