"""The two workflows as the state machine tests see them: names, steps, error tables and scripted answers.

One ``Workflow`` per state machine (``RETRAIN``, ``TRAIN_WATCH``), so a behaviour both share is one test
over ``WORKFLOWS``; what only one of them does stays in that workflow's own test files.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import exceptions as idempotency_exceptions
from prediction_one import errors as client_errors
from retrain_pipeline import errors as pipeline_errors

from tests.unit.template.scripted_sfn import RETRY_MAX_ATTEMPTS, Answer, FunctionError

LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# What a Lambda killed at its timeout surfaces as (Lambda.Unknown per the Step Functions guide; newer
# runtimes report Sandbox.Timedout): retried only where running the step again has no side effect.
LAMBDA_TIMEOUT_ERRORS = {"Lambda.Unknown", "Sandbox.Timedout"}
TERMINAL_TYPES = {"Succeed", "Fail"}


def is_terminal(state: dict[str, Any]) -> bool:
    return state["Type"] in TERMINAL_TYPES or state.get("End") is True


def subclasses_by_name(module: Any, base: type) -> set[str]:
    """The public classes of ``module`` derived from ``base`` (not ``base`` itself), by name."""
    return {
        cls.__name__
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, base) and cls is not base and not cls.__name__.startswith("_")
    }


def transient_lambda_errors() -> set[str]:
    """Every error name a Lambda step may retry: the transient classes of the client and the pipeline,
    Powertools' idempotency "in progress", and the Lambda service's own transient errors."""
    assert hasattr(idempotency_exceptions, "IdempotencyAlreadyInProgressError")
    return (
        subclasses_by_name(client_errors, client_errors.TransientError)
        | subclasses_by_name(pipeline_errors, pipeline_errors.TransientPipelineError)
        | {"IdempotencyAlreadyInProgressError"}
        | LAMBDA_SERVICE_ERRORS
    )


@dataclass(frozen=True)
class Failure:
    """A step that fails: the steps run before it (one answer each), its error, and how often it runs."""

    before: Mapping[str, list[Answer]]
    step: str
    error: FunctionError
    attempts: int = 1


@dataclass(frozen=True)
class Workflow:
    """One state machine: its names, its steps and the scripted answers that drive it."""

    id: str
    machine: str  # logical id in template.yaml
    event: str  # the sample execution input under events/
    input_key: str  # what the first step receives the execution input as
    start: str
    check: str
    archive: str
    wait: str  # the Wait state before each check
    job_key: str  # the state's record of the job being watched
    job_id: tuple[str, str]  # a field of that record and its scripted value
    prefix: str  # where the objects that start the workflow live
    outside_key: str  # a key a first step rejects as outside that prefix
    failed_error: str  # the error of the Fail state ending every recorded failure
    notification_workflow: str | None  # the notifications' ``workflow`` attribute, if any
    outcomes: Mapping[str, tuple[str, str]]  # poll state -> (Pass state, error it raises)
    statuses: Mapping[str, str]  # poll state -> the service status the scripts report with it
    lambda_steps: tuple[str, ...]
    read_only: frozenset[str]  # retried after a timeout: running them again has no side effect
    contention: Mapping[str, str]  # step -> the error its own retrier waits out
    throttle: Mapping[str, str]  # step -> the throttling error its own retrier waits out
    transient: Mapping[str, str]  # step -> a transient error the scripts answer once
    start_answer: Callable[..., Answer]  # ``start_answer(duplicate=False)``
    check_answer: Callable[[str, str], Answer]  # ``check_answer(state, status)``
    archive_result: dict[str, Any]
    record_answer: Callable[[dict[str, Any]], dict[str, Any]]
    success: Mapping[str, list[Answer]]  # every Lambda step of the success path, answered once
    first_polls: int  # the poll count the first step hands to the first check
    failures: tuple[Failure, ...] = ()  # the step failures the scripts drive, each recorded

    @property
    def failing_steps(self) -> tuple[str, ...]:
        """The steps whose failure is recorded (all Lambda steps but RecordFailure itself)."""
        return tuple(step for step in self.lambda_steps if step != "RecordFailure")

    def poll(self, state: str) -> Answer:
        """A check answering ``state`` with the status the service reports with it."""
        return self.check_answer(state, self.statuses[state])


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


def training_poll(state: str, status: str, polls: int = 1) -> dict[str, Any]:
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
            "poll": training_poll(state, {"running": "running", "finished": "finished"}.get(state, state)),
            "duplicate": duplicate,
            "execution_id": payload["execution_id"],
        }

    return answer


def check_answer(state: str, status: str) -> Callable[[dict[str, Any]], Any]:
    return lambda payload: training_poll(state, status, payload["poll"]["polls"] + 1)


def failure_answer(failure_key: str, *, with_execution_id: bool = False) -> Callable[[dict[str, Any]], Any]:
    """RecordFailure's answer: the record's key and the curated notification."""

    def answer(payload: dict[str, Any]) -> dict[str, Any]:
        state = payload["state"]
        record = {
            "failure_key": failure_key,
            "error": state["error"]["Error"],
            "message": "scripted",
            "step": state["failed_step"],
            "notification": {
                "error": state["error"]["Error"],
                "message": "scripted",
                "failure_record": f"s3://bucket/{failure_key}",
            },
        }
        return {**record, "execution_id": payload["execution_id"]} if with_execution_id else record

    return answer


RETRAIN_ARCHIVE = {
    "result_key": "results/demo/rj-1/retrain_result.zip",
    "summary_key": "results/demo/rj-1/summary.json",
    "size": 1234,
    "entries": ["metrics.json"],
}
TRAINING_ARCHIVE = {
    "result_key": "results/demo/training/ep-1/train_result.zip",
    "summary_key": "results/demo/training/ep-1/summary.json",
    "size": 679,
    "entries": ["metrics.json"],
    "already_archived": False,
}
SWITCHED = {"switched": True, "reason": "the retrained model was published"}
RETRAIN_RUNNING = poll_answer("running", "job_running")
RETRAIN_FINISHED = poll_answer("finished", "job_finished")
TRAINING_FINISHED = check_answer("finished", "finished")

RETRAIN = Workflow(
    id="retrain",
    machine="RetrainStateMachine",
    event="object-created.json",
    input_key="event",
    start="Upload",
    check="CheckStatus",
    archive="Archive",
    wait="WaitForJob",
    job_key="job",
    job_id=("retrain_job_id", "rj-1"),
    prefix="incoming/",
    outside_key="results/m/j/summary.json",
    failed_error="RetrainFailed",
    notification_workflow=None,
    outcomes={"failed": ("JobFailed", "JobFailed"), "deadline": ("JobDeadline", "JobDeadlineExceeded")},
    statuses={
        "running": "job_running",
        "finished": "job_finished",
        "failed": "job_failed",
        "deadline": "job_running",
    },
    lambda_steps=("Upload", "CheckStatus", "Archive", "SwitchModel", "RecordFailure"),
    read_only=frozenset({"CheckStatus", "Archive"}),
    # Contention is waited out by a retrier of its own, sized to what it waits for.
    contention={"Upload": "IdempotencyAlreadyInProgressError", "SwitchModel": "ModelSwitchBusy"},
    # Upload is the one step with reserved concurrency (MaxConcurrentUploads): its throttling has its own
    # retrier, sized for a bulk drop to drain (tests/unit/template/test_upload_concurrency.py).
    throttle={"Upload": "Lambda.TooManyRequestsException"},
    transient={
        "Upload": "ServerError",
        "CheckStatus": "RateLimited",
        "Archive": "Lambda.TooManyRequestsException",
        "SwitchModel": "ModelSwitchBusy",
    },
    start_answer=upload_answer,
    check_answer=poll_answer,
    archive_result=RETRAIN_ARCHIVE,
    record_answer=failure_answer("failed/demo/sample.csv.json"),
    success={
        "Upload": [upload_answer(auto_switch=True)],
        "CheckStatus": [RETRAIN_FINISHED],
        "Archive": [RETRAIN_ARCHIVE],
        "SwitchModel": [SWITCHED],
    },
    first_polls=0,
    failures=(
        Failure({}, "Upload", FunctionError("ApiKeyInvalid", "invalid_api_key.")),
        Failure({}, "Upload", FunctionError("ConnectionFailed"), 1 + RETRY_MAX_ATTEMPTS),  # retries exhausted
        Failure(
            {"Upload": [upload_answer(auto_switch=True)]}, "CheckStatus", FunctionError("RetrainJobNotFound")
        ),
        Failure(
            {"Upload": [upload_answer(auto_switch=True)], "CheckStatus": [RETRAIN_FINISHED]},
            "Archive",
            FunctionError("UrlExpired"),
        ),
        Failure(
            {
                "Upload": [upload_answer(auto_switch=True)],
                "CheckStatus": [RETRAIN_FINISHED],
                "Archive": [RETRAIN_ARCHIVE],
            },
            "SwitchModel",
            FunctionError("RetrainJobNotFinished"),
        ),
    ),
)

TRAIN_WATCH = Workflow(
    id="train-watch",
    machine="TrainWatchStateMachine",
    event="training-object-created.json",
    input_key="request",
    start="StartWatch",
    check="CheckTraining",
    archive="ArchiveTraining",
    wait="WaitForTraining",
    job_key="training",
    job_id=("external_process_id", "ep-1"),
    prefix="training/",
    outside_key="failed/demo/x.json",
    failed_error="TrainingWatchFailed",
    notification_workflow="training",
    outcomes={
        "failed": ("TrainingFailed", "TrainingFailed"),
        "deadline": ("TrainingDeadline", "TrainingDeadlineExceeded"),
    },
    statuses={"running": "running", "finished": "finished", "failed": "failed", "deadline": "running"},
    lambda_steps=("StartWatch", "CheckTraining", "ArchiveTraining", "RecordFailure"),
    read_only=frozenset({"CheckTraining", "ArchiveTraining"}),
    # A duplicate delivery waits for the first claim in a retrier of its own.
    contention={"StartWatch": "IdempotencyAlreadyInProgressError"},
    throttle={},
    transient={
        "StartWatch": "IdempotencyAlreadyInProgressError",
        "CheckTraining": "RateLimited",
        "ArchiveTraining": "ConnectionFailed",
    },
    start_answer=start_answer,
    check_answer=check_answer,
    archive_result=TRAINING_ARCHIVE,
    record_answer=failure_answer("failed/demo/churn-2024-06.json.json", with_execution_id=True),
    success={
        "StartWatch": [start_answer()],
        "CheckTraining": [TRAINING_FINISHED],
        "ArchiveTraining": [TRAINING_ARCHIVE],
    },
    first_polls=1,
    failures=(
        Failure({}, "StartWatch", FunctionError("BadTrainingRequest")),
        Failure({}, "StartWatch", FunctionError("UserDeleted", "This user may be deleted.")),
        Failure({}, "StartWatch", FunctionError("ServerError"), 1 + RETRY_MAX_ATTEMPTS),  # retries exhausted
        Failure({"StartWatch": [start_answer()]}, "CheckTraining", FunctionError("BadRequest")),
        Failure({"StartWatch": [start_answer("finished")]}, "ArchiveTraining", FunctionError("UrlExpired")),
    ),
)

WORKFLOWS = (RETRAIN, TRAIN_WATCH)
# The contention a step of either workflow waits out in a retrier of its own: in no generic retrier.
CONTENTION_ERRORS = {error for workflow in WORKFLOWS for error in workflow.contention.values()}


def each_workflow(rows: Callable[[Workflow], list[tuple[Any, ...]]] | None = None) -> list[Any]:
    """Parametrize rows ``(workflow, *row)`` for every workflow and each row ``rows(workflow)`` gives."""
    if rows is None:
        return [pytest.param(workflow, id=workflow.id) for workflow in WORKFLOWS]
    params = []
    for workflow in WORKFLOWS:
        for index, row in enumerate(rows(workflow)):
            names = [value for value in row if isinstance(value, str)]
            params.append(pytest.param(workflow, *row, id="-".join([workflow.id, *names]) or str(index)))
    return params
