"""statemachine/train_watch.asl.json: graph, retries, the contract of docs/architecture.md, sample inputs."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from prediction_one import errors as client_errors
from retrain_pipeline import errors as pipeline_errors
from retrain_pipeline import failures
from retrain_pipeline.step import TRAINING_STEPS

ROOT = Path(__file__).resolve().parents[3]
LAMBDA_STEPS = ("StartWatch", "CheckTraining", "ArchiveTraining", "RecordFailure")
WATCHER_STEPS = ("StartWatch", "CheckTraining", "ArchiveTraining")
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
EXECUTION_ID = "$$.Execution.Id"
# A Lambda killed at its timeout (see test_statemachine_definition): retried by the read-only steps only.
LAMBDA_TIMEOUT_ERRORS = {"Lambda.Unknown", "Sandbox.Timedout"}
READ_ONLY_STEPS = {"CheckTraining", "ArchiveTraining"}


def names_of(module: Any, base: type) -> set[str]:
    return {
        cls.__name__
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, base) and cls is not base and not cls.__name__.startswith("_")
    }


@pytest.fixture(scope="module")
def watcher(state_machine_sources) -> tuple[dict[str, Any], str]:
    return state_machine_sources["TrainWatchStateMachine"]


@pytest.fixture(scope="module")
def asl(watcher, render_asl) -> dict[str, Any]:
    return render_asl(watcher[1])


@pytest.fixture(scope="module")
def states(asl) -> dict[str, Any]:
    return asl["States"]


def test_substitutions_point_at_the_template_resources(watcher, sam_template):
    substitutions = watcher[0]["DefinitionSubstitutions"]
    assert set(substitutions) == {
        "StartWatchFunctionArn",
        "CheckTrainingFunctionArn",
        "ArchiveTrainingFunctionArn",
        "RecordFailureFunctionArn",
        "NotificationTopicArn",
        "TaskRetryIntervalSeconds",
        "TaskRetryMaxAttempts",
        "TaskRetryMaxDelaySeconds",
    }
    for key, value in substitutions.items():
        if key.endswith("FunctionArn"):
            function = key.removesuffix("Arn")
            assert value == {"Fn::GetAtt": [function, "Arn"]}, key
            assert sam_template["Resources"][function]["Type"] == "AWS::Serverless::Function"
        elif key == "NotificationTopicArn":
            assert value == {"Ref": "NotificationTopic"}
        else:
            assert value == {"Ref": key}


def test_the_failure_path_is_the_retrain_workflows_function(watcher, state_machine_sources):
    retrain = state_machine_sources["RetrainStateMachine"][0]["DefinitionSubstitutions"]
    ours = watcher[0]["DefinitionSubstitutions"]
    assert ours["RecordFailureFunctionArn"] == retrain["RecordFailureFunctionArn"]
    assert ours["NotificationTopicArn"] == retrain["NotificationTopicArn"]


def test_step_names_tell_the_shared_function_which_workflow_failed(states, retrain_asl):
    """RecordFailure hands a state to the training records when its failed_step is a watcher step, so the
    watcher's step names must be exactly ``TRAINING_STEPS`` and never a retrain step name."""
    failed_steps = {
        state["Result"]
        for state in states.values()
        if state["Type"] == "Pass" and isinstance(state.get("Result"), str)
    }
    assert failed_steps == set(WATCHER_STEPS) == set(TRAINING_STEPS)
    assert not set(WATCHER_STEPS) & set(retrain_asl["States"])
    retrain_failed = {
        state["Result"]
        for state in retrain_asl["States"].values()
        if state["Type"] == "Pass" and isinstance(state.get("Result"), str)
    }
    assert retrain_failed and not TRAINING_STEPS & retrain_failed


def test_lambda_steps_retry_exactly_the_transient_errors(states):
    expected = (
        names_of(client_errors, client_errors.TransientError)
        | names_of(pipeline_errors, pipeline_errors.TransientPipelineError)
        | LAMBDA_SERVICE_ERRORS
    ) - {"ModelSwitchBusy"}  # waited out by the retrain workflow's SwitchModel only
    for step in LAMBDA_STEPS:
        *contention, retrier = states[step]["Retry"]
        wanted = expected | (LAMBDA_TIMEOUT_ERRORS if step in READ_ONLY_STEPS else set())
        assert set(retrier["ErrorEquals"]) == wanted, step
        assert retrier["JitterStrategy"] == "FULL" and retrier["BackoffRate"] >= 1.5
        # A duplicate delivery waits for the first claim in a retrier of its own (sized there).
        own = [r["ErrorEquals"] for r in contention]
        assert own == ([["IdempotencyAlreadyInProgressError"]] if step == "StartWatch" else []), step


def test_retry_timing_comes_from_the_substitutions(watcher, render_asl):
    asl = render_asl(
        watcher[1],
        {"TaskRetryIntervalSeconds": "11", "TaskRetryMaxAttempts": "7", "TaskRetryMaxDelaySeconds": "303"},
    )
    retriers = [
        retrier
        for state in asl["States"].values()
        for retrier in state.get("Retry", [])
        if retrier["ErrorEquals"] != ["IdempotencyAlreadyInProgressError"]
    ]
    assert len(retriers) == len(LAMBDA_STEPS) + 2  # the Lambda steps and both notifications
    assert {(r["IntervalSeconds"], r["MaxAttempts"], r["MaxDelaySeconds"]) for r in retriers} == {
        (11, 7, 303)
    }


def test_lambda_steps_catch_everything_into_their_failed_state(states):
    for step in WATCHER_STEPS:
        catchers = states[step]["Catch"]
        if step == "StartWatch":
            # A key outside training/ ends the execution at once: no record, no notification.
            ignored, *catchers = catchers
            assert ignored["ErrorEquals"] == ["KeyOutsidePrefix"]
            assert states[ignored["Next"]]["Type"] == "Fail"
        (catcher,) = catchers
        assert catcher == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{step}Failed"}
        failed = states[f"{step}Failed"]
        assert failed == {
            "Comment": failed["Comment"],
            "Type": "Pass",
            "Result": step,
            "ResultPath": "$.failed_step",
            "Next": "RecordFailure",
        }
    (catcher,) = states["RecordFailure"]["Catch"]
    assert catcher["ResultPath"] == "$.record_failure_error"
    assert states[catcher["Next"]]["Next"] == "NotifyFailure"


def test_step_inputs_and_results_follow_the_contract(asl, states):
    assert asl["StartAt"] == "StartWatch"
    assert states["StartWatch"]["Parameters"] == {"request.$": "$", "execution_id.$": EXECUTION_ID}
    assert states["StartWatch"]["ResultPath"] == "$"
    assert states["CheckTraining"]["Parameters"] == {"training.$": "$.training", "poll.$": "$.poll"}
    assert states["CheckTraining"]["ResultPath"] == "$.poll"
    assert states["ArchiveTraining"]["Parameters"] == {
        "source.$": "$.source",
        "training.$": "$.training",
        "poll.$": "$.poll",
        "execution_id.$": EXECUTION_ID,
    }
    assert states["ArchiveTraining"]["ResultPath"] == "$.archive"
    assert states["RecordFailure"]["Parameters"] == {"state.$": "$", "execution_id.$": EXECUTION_ID}
    assert states["RecordFailure"]["ResultPath"] == "$.failure"
    assert states["WaitForTraining"]["SecondsPath"] == "$.poll.wait_seconds"
    assert states["WaitForTraining"]["Next"] == "CheckTraining"
    for step in LAMBDA_STEPS:
        assert "OutputPath" not in states[step] and "ResultSelector" not in states[step], step
    assert states["StartWatch"]["Resource"].endswith(":function:StartWatchFunction")
    assert states["CheckTraining"]["Resource"].endswith(":function:CheckTrainingFunction")
    assert states["ArchiveTraining"]["Resource"].endswith(":function:ArchiveTrainingFunction")
    assert states["RecordFailure"]["Resource"].endswith(":function:RecordFailureFunction")


def test_the_routes_after_each_check(states):
    assert states["StartWatch"]["Next"] == "IsDuplicate"
    assert states["IsDuplicate"]["Choices"] == [
        {"Variable": "$.duplicate", "BooleanEquals": True, "Next": "DuplicateEvent"}
    ]
    assert states["IsDuplicate"]["Default"] == "TrainingState"
    assert states["DuplicateEvent"]["Type"] == "Succeed"
    assert states["CheckTraining"]["Next"] == "TrainingState"
    routes = {choice["StringEquals"]: choice["Next"] for choice in states["TrainingState"]["Choices"]}
    assert all(choice["Variable"] == "$.poll.state" for choice in states["TrainingState"]["Choices"])
    assert routes == {
        "finished": "ArchiveTraining",
        "failed": "TrainingFailed",
        "deadline": "TrainingDeadline",
    }
    assert states["TrainingState"]["Default"] == "WaitForTraining"
    assert states["ArchiveTraining"]["Next"] == "NotifySuccess"


@pytest.mark.parametrize(
    ("state_name", "error"),
    [("TrainingFailed", "TrainingFailed"), ("TrainingDeadline", "TrainingDeadlineExceeded")],
)
def test_run_outcomes_raise_the_pipeline_error_names(states, state_name, error):
    state = states[state_name]
    assert state["Type"] == "Pass" and state["ResultPath"] == "$.error"
    assert state["Result"]["Error"] == error
    assert issubclass(getattr(pipeline_errors, error), pipeline_errors.PermanentPipelineError)
    cause = json.loads(state["Result"]["Cause"])  # shaped like a Lambda error, as RecordFailure reads it
    assert cause["errorType"] == error and cause["errorMessage"]
    assert state["Next"] == "CheckTrainingFailed"


def test_notifications_say_which_workflow_and_never_lose_the_outcome(watcher, states):
    assert watcher[1].count('"TopicArn": "${NotificationTopicArn}"') == 2
    for step, outcome in (("NotifySuccess", "SUCCEEDED"), ("NotifyFailure", "FAILED")):
        state = states[step]
        assert state["Resource"] == "arn:aws:states:::sns:publish"
        assert (
            state["Parameters"]["Message.$"]
            == {"SUCCEEDED": "$", "FAILED": "$.failure.notification"}[outcome]
        )
        attributes = state["Parameters"]["MessageAttributes"]
        assert attributes["outcome"]["StringValue"] == outcome
        assert attributes["workflow"] == {"DataType": "String", "StringValue": "training"}
        assert "training" in state["Parameters"]["Subject"] and state["Parameters"]["Subject"].isascii()
        assert state["Retry"] and state["Catch"][0]["ResultPath"] == "$.notification_error"
    assert states["NotifySuccess"]["Next"] == "Succeeded"
    assert states["NotifySuccess"]["Catch"][0]["Next"] == "SucceededWithoutNotification"
    assert states["SucceededWithoutNotification"]["Type"] == "Succeed"
    assert states["NotifyFailure"]["Next"] == states["NotifyFailure"]["Catch"][0]["Next"] == "Failed"


def test_the_failed_end_names_the_trail(states):
    fail_states = {name: state for name, state in states.items() if state["Type"] == "Fail"}
    assert list(fail_states) == ["KeyOutsidePrefix", "Failed"]
    assert fail_states["Failed"]["Error"] == "TrainingWatchFailed"
    assert "failed/" in fail_states["Failed"]["Cause"] and "notification" in fail_states["Failed"]["Cause"]


@pytest.mark.parametrize("step", ["StartWatchFailed", "CheckTrainingFailed", "ArchiveTrainingFailed"])
def test_every_failure_path_records_then_notifies(states, step):
    path = [step]
    while states[path[-1]]["Type"] not in {"Succeed", "Fail"}:
        path.append(states[path[-1]]["Next"])
    assert path[-3:] == ["RecordFailure", "NotifyFailure", "Failed"]


# Sample events (events/training-*.json)


def test_the_sample_request_is_the_object_the_sample_event_names(load_event):
    event = load_event("training-object-created.json")
    body = (ROOT / "events" / "training-request.json").read_bytes()
    obj = event["detail"]["object"]
    assert obj["key"].startswith("training/demo/") and obj["key"].endswith(".json")
    assert obj["size"] == len(body)
    assert obj["etag"] == hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert set(json.loads(body)) == {"external_process_id"}
    assert event["resources"] == [f"arn:aws:s3:::{event['detail']['bucket']['name']}"]


def test_sample_inputs_follow_the_contract(load_event):
    request = json.loads((ROOT / "events" / "training-request.json").read_text(encoding="utf-8"))
    direct = load_event("training-execution-input.json")
    assert direct == {"model": "demo", **request}

    start = load_event("training-start-watch.json")
    assert start["request"] == load_event("training-object-created.json")
    assert start["execution_id"].startswith("arn:aws:states:") and ":execution:" in start["execution_id"]

    check = load_event("training-check.json")
    assert set(check) == {"training", "poll"}
    assert set(check["training"]) == {"model", "external_process_id", "requested_at"}
    poll_keys = {"wait_seconds", "polls", "started_at", "deadline_at", "checked_at", "status", "state"}
    assert set(check["poll"]) == poll_keys | {"created_datetime", "updated_datetime"}

    archive = load_event("training-archive.json")
    assert set(archive) == {"source", "training", "poll", "execution_id"}
    assert archive["poll"]["state"] == "finished"
    obj = start["request"]["detail"]["object"]
    assert (archive["source"]["key"], archive["source"]["version_id"]) == (obj["key"], obj["version-id"])

    failure = load_event("training-record-failure.json")
    assert set(failure) == {"state", "execution_id"}
    assert failure["state"]["failed_step"] in TRAINING_STEPS
    assert set(failure["state"]["error"]) == {"Error", "Cause"}
    assert failures.is_training_state(failure["state"])
