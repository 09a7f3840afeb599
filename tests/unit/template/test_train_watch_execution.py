"""Run statemachine/train_watch.asl.json in moto's Step Functions interpreter with scripted Lambda answers.

Each Lambda task is answered by a script per state (a return value, or an error of a given name), so every
path of the graph runs: polling to success, a run that is already finished, duplicates, transient retries,
caught failures, failed and overdue runs, and notifications that cannot be published.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.utils import TMP_THREADS

REGION = "us-east-1"
ACCOUNT = "123456789012"
RETRY_MAX_ATTEMPTS = 2
RETRY_MAX_DELAY = 3
EXECUTION_TIMEOUT = 30.0
DIRECT_INPUT = {"model": "demo", "external_process_id": "ep-1"}

Answer = dict[str, Any] | Exception | Callable[[dict[str, Any]], Any]


class FunctionError(Exception):
    """A scripted Lambda failure: ``errorType`` becomes the ASL error name."""

    def __init__(self, error_type: str, message: str = "scripted failure") -> None:
        super().__init__(message)
        self.error_type = error_type


def step_of(function: str, payload: dict[str, Any]) -> str:
    """The state that invoked ``function``: CheckTrainingFunction serves StartWatch and CheckTraining."""
    if function == "CheckTrainingFunction":
        return "StartWatch" if "request" in payload else "CheckTraining"
    return function.removesuffix("Function")


@dataclass
class ScriptedFunctions:
    """Answers Lambda invocations from per-state scripts; the last answer repeats."""

    scripts: dict[str, list[Answer]]
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        payload = json.loads(parameters["Payload"])
        step = step_of(parameters["FunctionName"].rsplit(":", 1)[-1], payload)
        with self.lock:
            self.calls.append((step, payload))
            script = self.scripts.get(step)
            assert script, f"{step} was invoked but has no script"
            answer = script.pop(0) if len(script) > 1 else script[0]
        if callable(answer):
            answer = answer(payload)
        if isinstance(answer, FunctionError):
            body = {"errorType": answer.error_type, "errorMessage": str(answer), "stackTrace": []}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body}
        return {"StatusCode": 200, "Payload": answer}

    def called(self, step: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.calls if name == step]

    @property
    def order(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass
class Run:
    status: str
    description: dict[str, Any]
    output: dict[str, Any] | None
    functions: ScriptedFunctions
    notifications: list[dict[str, Any]]
    retry_delays: list[float]
    execution_arn: str


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
        "execution_id": payload["execution_id"],
    }


def wait_for_executions(started: int, deadline: float) -> None:
    while True:
        pending = [thread for thread in TMP_THREADS[started:] if thread.is_alive()]
        if not pending:
            return
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the execution did not finish in time"
        pending[0].join(timeout=remaining)


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.fixture(scope="module")
def aws(state_machine_sources, render_asl):
    """moto with two copies of the real definition: one notifying a live topic, one a missing topic."""
    text = state_machine_sources["TrainWatchStateMachine"][1]
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        topic_arn = sns.create_topic(Name="notifications")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        machines = {}
        for topic_exists, topic in (
            (True, topic_arn),
            (False, f"arn:aws:sns:{REGION}:{ACCOUNT}:missing-topic"),
        ):
            definition = render_asl(
                text,
                {
                    "NotificationTopicArn": topic,
                    "TaskRetryIntervalSeconds": "1",
                    "TaskRetryMaxAttempts": str(RETRY_MAX_ATTEMPTS),
                    "TaskRetryMaxDelaySeconds": str(RETRY_MAX_DELAY),
                },
            )
            machines[topic_exists] = sfn.create_state_machine(
                name=f"train-watch-{'notifying' if topic_exists else 'unnotified'}",
                definition=json.dumps(definition),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/train-watch",
            )["stateMachineArn"]
        yield SimpleNamespace(sfn=sfn, sqs=sqs, queue_url=queue_url, machines=machines)


@pytest.fixture
def run_watch(monkeypatch, aws, load_event, request):
    """``run_watch(scripts, execution_input=None, topic_exists=True)``: one run of the real definition."""
    retry_delays: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=retry_delays.append))
    drain(aws.sqs, aws.queue_url)
    runs = iter(range(1_000))

    def run(
        scripts: dict[str, list[Answer]], execution_input: Any = None, *, topic_exists: bool = True
    ) -> Run:
        functions = ScriptedFunctions({name: list(answers) for name, answers in scripts.items()})
        monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", functions.invoke)
        started = len(TMP_THREADS)
        name = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:70] + f"-{next(runs)}"
        execution_input = (
            load_event("training-object-created.json") if execution_input is None else execution_input
        )
        execution_arn = aws.sfn.start_execution(
            stateMachineArn=aws.machines[topic_exists], name=name, input=json.dumps(execution_input)
        )["executionArn"]
        wait_for_executions(started, time.monotonic() + EXECUTION_TIMEOUT)
        description = aws.sfn.describe_execution(executionArn=execution_arn)
        output = json.loads(description["output"]) if description.get("output") else None
        notifications = drain(aws.sqs, aws.queue_url)
        return Run(
            description["status"], description, output, functions, notifications, retry_delays, execution_arn
        )

    return run


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
    assert message["failure"]["error"] == error


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
    assert message["error"]["Error"] == "ModelNotConfigured"
    assert message["record_failure_error"]["Error"] == "AccessDenied"


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
