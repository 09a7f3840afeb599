"""The state machine definitions: substitutions, graph, retries and the contract in docs/architecture.md."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import exceptions as idempotency_exceptions
from prediction_one import errors as client_errors
from retrain_pipeline import errors as pipeline_errors

from p1_retrain.local.intrinsics import placeholders

ROOT = Path(__file__).resolve().parents[3]
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
SNS_TRANSIENT_ERRORS = {
    "SNS.ThrottledException",
    "SNS.ThrottlingException",
    "SNS.InternalErrorException",
    "SNS.KMSThrottlingException",
}
LAMBDA_STEPS = ("Upload", "CheckStatus", "Archive", "SwitchModel", "RecordFailure")
# What a Lambda killed at its timeout surfaces as (Lambda.Unknown per the Step Functions guide; newer
# runtimes report Sandbox.Timedout): retried only where running the step again has no side effect.
LAMBDA_TIMEOUT_ERRORS = {"Lambda.Unknown", "Sandbox.Timedout"}
READ_ONLY_STEPS = {"CheckStatus", "Archive"}
# Contention is waited out by a retrier of its own, sized to what it waits for.
CONTENTION_RETRIERS = {"Upload": "IdempotencyAlreadyInProgressError", "SwitchModel": "ModelSwitchBusy"}
# Upload is the one step with reserved concurrency (MaxConcurrentUploads): its throttling has its own retrier,
# sized for a bulk drop to drain (tests/unit/template/test_upload_concurrency.py).
THROTTLE_RETRIERS = {"Upload": "Lambda.TooManyRequestsException"}
TERMINAL_TYPES = {"Succeed", "Fail"}


def subclasses_by_name(module: Any, base: type) -> set[str]:
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


def transitions(state: dict[str, Any]) -> list[str]:
    targets = [state["Next"]] if "Next" in state else []
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def is_terminal(state: dict[str, Any]) -> bool:
    return state["Type"] in TERMINAL_TYPES or state.get("End") is True


def reachable(states: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    pending = [start]
    while pending:
        name = pending.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        pending.extend(transitions(states[name]))
    return seen


def all_definitions(
    state_machine_sources: dict[str, tuple[dict[str, Any], str]], render_asl: Callable[..., dict[str, Any]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, (_, text) in state_machine_sources.items():
        yield name, render_asl(text)


def test_every_asl_file_belongs_to_a_state_machine(state_machine_sources):
    used = {
        (ROOT / properties["DefinitionUri"]).resolve() for properties, _ in state_machine_sources.values()
    }
    files = {path.resolve() for path in (ROOT / "statemachine").glob("*.asl.json")}
    assert files, "no statemachine/*.asl.json"
    assert files <= used, f"definitions no state machine uses: {sorted(str(p) for p in files - used)}"


def test_placeholders_and_substitutions_match_both_ways(state_machine_sources):
    for name, (properties, text) in state_machine_sources.items():
        used = placeholders(text)
        substitutions = set(properties.get("DefinitionSubstitutions", {}))
        assert used - substitutions == set(), f"{name}: placeholders without a substitution"
        assert substitutions - used == set(), f"{name}: substitutions the definition never uses"


def test_substitutions_point_at_the_template_resources(retrain_properties, sam_template):
    resources = sam_template["Resources"]
    parameters = sam_template["Parameters"]
    for key, value in retrain_properties["DefinitionSubstitutions"].items():
        if key.endswith("FunctionArn"):
            function = key.removesuffix("Arn")
            assert value == {"Fn::GetAtt": [function, "Arn"]}, key
            assert resources[function]["Type"] == "AWS::Serverless::Function"
        elif key == "NotificationTopicArn":
            assert value == {"Ref": "NotificationTopic"}
        elif key == "SwitchLeaseSeconds":
            lease = sam_template["Globals"]["Function"]["Environment"]["Variables"]["SWITCH_LEASE_SECONDS"]
            assert value == lease == {"Ref": key}, "the switch retrier must wait for the functions' lease"
        else:
            assert value == {"Ref": key}, f"{key} should come from the parameter of the same name"
            assert parameters[key]["Type"] == "Number"


def test_every_state_is_reachable_and_every_target_exists(state_machine_sources, render_asl):
    for name, definition in all_definitions(state_machine_sources, render_asl):
        states = definition["States"]
        assert definition["StartAt"] in states, name
        for state_name, state in states.items():
            missing = [target for target in transitions(state) if target not in states]
            assert not missing, f"{name}.{state_name} goes to undefined states {missing}"
        unreachable = set(states) - reachable(states, definition["StartAt"])
        assert not unreachable, f"{name}: unreachable states {sorted(unreachable)}"


def test_no_dead_ends_and_every_state_can_finish(state_machine_sources, render_asl):
    for name, definition in all_definitions(state_machine_sources, render_asl):
        states = definition["States"]
        for state_name, state in states.items():
            if state["Type"] in TERMINAL_TYPES:
                assert not transitions(state), f"{name}.{state_name}: a terminal state has transitions"
                continue
            if state["Type"] == "Choice":
                assert "Default" in state, f"{name}.{state_name}: a Choice without Default fails at run time"
            else:
                assert ("Next" in state) != (state.get("End") is True), f"{name}.{state_name}: Next xor End"
            finishing = [target for target in reachable(states, state_name) if is_terminal(states[target])]
            assert finishing, f"{name}.{state_name} can never reach an end"


def test_comments_are_present_and_short(state_machine_sources, render_asl):
    for name, definition in all_definitions(state_machine_sources, render_asl):
        assert 0 < len(definition["Comment"]) <= 300, name
        for state_name, state in definition["States"].items():
            comment = state.get("Comment", "")
            assert 0 < len(comment) <= 160, f"{name}.{state_name}: Comment missing or too long"


def test_lambda_steps_retry_exactly_the_transient_errors(retrain_asl):
    expected = transient_lambda_errors()
    assert {"ServerError", "RateLimited", "ConnectionFailed", "UploadAnswerLost"} <= expected
    assert {"ConfigurationFileNotFound", "ModelSwitchBusy"} <= expected
    generic = expected - set(CONTENTION_RETRIERS.values())
    for step in LAMBDA_STEPS:
        *own_retriers, last = retrain_asl["States"][step]["Retry"]
        wanted = generic | (LAMBDA_TIMEOUT_ERRORS if step in READ_ONLY_STEPS else set())
        wanted -= {THROTTLE_RETRIERS.get(step)}
        assert set(last["ErrorEquals"]) == wanted, (
            f"{step}: retries {sorted(set(last['ErrorEquals']) ^ wanted)}"
        )
        own = [retrier["ErrorEquals"] for retrier in own_retriers]
        expected_own = [[table[step]] for table in (THROTTLE_RETRIERS, CONTENTION_RETRIERS) if step in table]
        assert own == expected_own, step


def test_no_retrier_retries_permanent_errors(state_machine_sources, render_asl):
    allowed = transient_lambda_errors() | SNS_TRANSIENT_ERRORS | LAMBDA_TIMEOUT_ERRORS
    permanent = subclasses_by_name(client_errors, client_errors.PermanentError) | subclasses_by_name(
        pipeline_errors, pipeline_errors.PermanentPipelineError
    )
    assert "ApiKeyInvalid" in permanent and "JobFailed" in permanent
    for name, definition in all_definitions(state_machine_sources, render_asl):
        for state_name, state in definition["States"].items():
            for retrier in state.get("Retry", []):
                names = set(retrier["ErrorEquals"])
                assert not names & {"States.ALL", "States.TaskFailed", "States.Runtime"}, state_name
                assert not names & permanent, f"{name}.{state_name} retries permanent errors"
                assert names <= allowed, f"{name}.{state_name} retries unknown names {names - allowed}"


def test_retry_timing_comes_from_the_substitutions(retrain_text, render_asl):
    asl = render_asl(
        retrain_text,
        {"TaskRetryIntervalSeconds": "11", "TaskRetryMaxAttempts": "7", "TaskRetryMaxDelaySeconds": "303"},
    )
    retriers = [
        retrier
        for state in asl["States"].values()
        for retrier in state.get("Retry", [])
        if retrier["ErrorEquals"]
        not in [[name] for name in (*CONTENTION_RETRIERS.values(), *THROTTLE_RETRIERS.values())]
    ]
    assert len(retriers) == len(LAMBDA_STEPS) + 2  # the Lambda steps and both notifications
    for retrier in retriers:
        assert retrier["IntervalSeconds"] == 11
        assert retrier["MaxAttempts"] == 7
        assert retrier["MaxDelaySeconds"] == 303
        assert retrier["BackoffRate"] >= 1.5
        assert retrier["JitterStrategy"] == "FULL"


def test_retry_defaults_are_valid(sam_template, retrain_text, render_asl):
    parameters = sam_template["Parameters"]
    defaults = {
        name: str(parameters[name]["Default"])
        for name in ("TaskRetryIntervalSeconds", "TaskRetryMaxAttempts", "TaskRetryMaxDelaySeconds")
    }
    retrier = render_asl(retrain_text, defaults)["States"]["Upload"]["Retry"][-1]
    assert 1 <= retrier["IntervalSeconds"] <= retrier["MaxDelaySeconds"]
    assert retrier["MaxAttempts"] >= 1


def test_lambda_steps_catch_everything_into_their_failed_state(retrain_asl):
    states = retrain_asl["States"]
    for step in LAMBDA_STEPS:
        catchers = states[step]["Catch"]
        if step == "Upload":
            # A key outside incoming/ ends the execution at once: no record, no notification.
            ignored, *catchers = catchers
            assert ignored["ErrorEquals"] == ["KeyOutsidePrefix"]
            assert states[ignored["Next"]]["Type"] == "Fail"
        assert len(catchers) == 1 and catchers[0]["ErrorEquals"] == ["States.ALL"], step
        if step == "RecordFailure":
            # A failure record that cannot be written must not stop the failure notification.
            assert states[catchers[0]["Next"]]["Next"] == "NotifyFailure"
            assert catchers[0]["ResultPath"] not in {"$", "$.error", "$.failed_step", "$.failure"}
            continue
        assert catchers[0]["ResultPath"] == "$.error", step
        failed = states[catchers[0]["Next"]]
        assert catchers[0]["Next"] == f"{step}Failed"
        assert failed == {
            "Comment": failed["Comment"],
            "Type": "Pass",
            "Result": step,
            "ResultPath": "$.failed_step",
            "Next": "RecordFailure",
        }


def test_step_inputs_and_results_follow_the_contract(retrain_asl):
    states = retrain_asl["States"]
    execution_id = "$$.Execution.Id"
    assert retrain_asl["StartAt"] == "Upload"
    assert states["Upload"]["Parameters"] == {"event.$": "$", "execution_id.$": execution_id}
    assert states["Upload"]["ResultPath"] == "$"
    assert states["CheckStatus"]["Parameters"] == {"job.$": "$.job", "poll.$": "$.poll"}
    assert states["CheckStatus"]["ResultPath"] == "$.poll"
    assert states["Archive"]["Parameters"] == {
        "source.$": "$.source",
        "job.$": "$.job",
        "poll.$": "$.poll",
        "execution_id.$": execution_id,
    }
    assert states["Archive"]["ResultPath"] == "$.archive"
    assert "Parameters" not in states["SwitchModel"] and "InputPath" not in states["SwitchModel"]
    assert states["SwitchModel"]["ResultPath"] == "$.switch"
    assert states["RecordFailure"]["Parameters"] == {"state.$": "$", "execution_id.$": execution_id}
    assert states["RecordFailure"]["ResultPath"] == "$.failure"
    assert states["WaitForJob"] == {
        **states["WaitForJob"],
        "Type": "Wait",
        "SecondsPath": "$.poll.wait_seconds",
    }
    assert states["WaitForJob"]["Next"] == "CheckStatus"
    assert states["DuplicateEvent"]["Type"] == "Succeed"
    for step in LAMBDA_STEPS:
        assert "OutputPath" not in states[step] and "ResultSelector" not in states[step], step


def test_lambda_steps_call_their_own_function(retrain_asl):
    tasks = {name: state for name, state in retrain_asl["States"].items() if state["Type"] == "Task"}
    assert set(tasks) == {*LAMBDA_STEPS, "NotifySuccess", "NotifyFailure"}
    for step in LAMBDA_STEPS:
        # The sample substitution of ${<Step>FunctionArn} ends in ":function:<Step>Function".
        assert tasks[step]["Resource"].endswith(f":function:{step}Function"), step


def test_job_outcomes_raise_the_pipeline_error_names(retrain_asl):
    states = retrain_asl["States"]
    for state_name, error_name in (("JobFailed", "JobFailed"), ("JobDeadline", "JobDeadlineExceeded")):
        state = states[state_name]
        assert state["Type"] == "Pass" and state["ResultPath"] == "$.error"
        assert state["Result"]["Error"] == error_name
        assert error_name in subclasses_by_name(pipeline_errors, pipeline_errors.PipelineError)
        cause = json.loads(state["Result"]["Cause"])  # shaped like a Lambda error, as RecordFailure reads it
        assert cause["errorType"] == error_name and cause["errorMessage"]
        assert state["Next"] == "CheckStatusFailed"


def test_notifications_publish_the_state_and_never_lose_the_outcome(retrain_text, retrain_asl):
    states = retrain_asl["States"]
    raw_topic = re.findall(r'"TopicArn":\s*"([^"]+)"', retrain_text)
    assert raw_topic == ["${NotificationTopicArn}", "${NotificationTopicArn}"]
    for step, outcome in (("NotifySuccess", "SUCCEEDED"), ("NotifyFailure", "FAILED")):
        state = states[step]
        assert state["Resource"] == "arn:aws:states:::sns:publish"
        # Success: the state (ids and keys only); failure: RecordFailure's curated notification.
        assert (
            state["Parameters"]["Message.$"]
            == {"SUCCEEDED": "$", "FAILED": "$.failure.notification"}[outcome]
        )
        assert state["Parameters"]["MessageAttributes"]["outcome"]["StringValue"] == outcome
        assert state["Parameters"]["Subject"].isascii() and len(state["Parameters"]["Subject"]) < 100
        assert state["Retry"], step
        assert [catcher["ErrorEquals"] for catcher in state["Catch"]] == [["States.ALL"]]
        assert state["Catch"][0]["ResultPath"] == "$.notification_error"
    # A retrain whose success notification fails still succeeded; a failure stays a failure.
    assert states["NotifySuccess"]["Next"] == "Succeeded"
    assert states[states["NotifySuccess"]["Catch"][0]["Next"]]["Type"] == "Succeed"
    assert states["NotifyFailure"]["Next"] == "Failed"
    assert states["NotifyFailure"]["Catch"][0]["Next"] == "Failed"
    assert states["RecordFailure"]["Next"] == "NotifyFailure"


def test_the_failed_end_names_the_trail(retrain_asl):
    failed = retrain_asl["States"]["Failed"]
    assert failed["Type"] == "Fail"
    assert failed["Error"] == "RetrainFailed"
    assert "failed/" in failed["Cause"] and "notification" in failed["Cause"]
    fail_states = [name for name, state in retrain_asl["States"].items() if state["Type"] == "Fail"]
    assert fail_states == ["KeyOutsidePrefix", "Failed"]


@pytest.mark.parametrize("step", ["UploadFailed", "CheckStatusFailed", "ArchiveFailed", "SwitchModelFailed"])
def test_every_failure_path_records_then_notifies(retrain_asl, step):
    states = retrain_asl["States"]
    path = [step]
    while not is_terminal(states[path[-1]]):
        path.append(states[path[-1]]["Next"])
    assert path[-3:] == ["RecordFailure", "NotifyFailure", "Failed"]
