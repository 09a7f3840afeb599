"""Both workflows' definitions: substitutions, retries, catchers and the contract in docs/architecture.md.

Every check the retrain and the training-watch definitions share is one test over both machines; what only
one of them has is in test_statemachine_definition.py (with the checks over every definition file) and
test_train_watch_definition.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from retrain_pipeline import errors as pipeline_errors

from tests.unit.template.workflows import (
    CONTENTION_ERRORS,
    LAMBDA_TIMEOUT_ERRORS,
    Workflow,
    each_workflow,
    is_terminal,
    subclasses_by_name,
    transient_lambda_errors,
)

EXECUTION_ID = "$$.Execution.Id"
RETRY_TIMING = ("TaskRetryIntervalSeconds", "TaskRetryMaxAttempts", "TaskRetryMaxDelaySeconds")


@pytest.fixture
def properties(state_machine_sources, workflow: Workflow) -> dict[str, Any]:
    return state_machine_sources[workflow.machine][0]


@pytest.fixture
def text(state_machine_sources, workflow: Workflow) -> str:
    """The workflow's definition file, placeholders unfilled."""
    return state_machine_sources[workflow.machine][1]


@pytest.fixture
def asl(text, render_asl) -> dict[str, Any]:
    """The workflow's definition, substituted with sample values and parsed."""
    return render_asl(text)


@pytest.mark.parametrize("workflow", each_workflow())
def test_substitutions_point_at_the_template_resources(properties, sam_template, workflow):
    resources = sam_template["Resources"]
    parameters = sam_template["Parameters"]
    for key, value in properties["DefinitionSubstitutions"].items():
        if key.endswith("FunctionArn"):
            function = key.removesuffix("Arn")
            assert value == {"Fn::GetAtt": [function, "Arn"]}, key
            assert resources[function]["Type"] == "AWS::Serverless::Function"
        elif key == "NotificationTopicArn":
            assert value == {"Ref": "NotificationTopic"}
        else:
            assert value == {"Ref": key}, f"{key} should come from the parameter of the same name"
            assert parameters[key]["Type"] == "Number"


@pytest.mark.parametrize("workflow", each_workflow())
def test_lambda_steps_retry_exactly_the_transient_errors(asl, workflow):
    expected = transient_lambda_errors()
    assert {"ServerError", "RateLimited", "ConnectionFailed", "UploadAnswerLost"} <= expected
    assert {"ConfigurationFileNotFound", "ModelSwitchBusy"} <= expected
    generic = expected - CONTENTION_ERRORS
    for step in workflow.lambda_steps:
        *own_retriers, last = asl["States"][step]["Retry"]
        wanted = generic | (LAMBDA_TIMEOUT_ERRORS if step in workflow.read_only else set())
        wanted -= {workflow.throttle.get(step)}
        assert set(last["ErrorEquals"]) == wanted, (
            f"{step}: retries {sorted(set(last['ErrorEquals']) ^ wanted)}"
        )
        assert last["JitterStrategy"] == "FULL" and last["BackoffRate"] >= 1.5
        own = [retrier["ErrorEquals"] for retrier in own_retriers]
        expected_own = [[table[step]] for table in (workflow.throttle, workflow.contention) if step in table]
        assert own == expected_own, step


@pytest.mark.parametrize("workflow", each_workflow())
def test_retry_timing_comes_from_the_substitutions(text, render_asl, workflow):
    asl = render_asl(text, dict(zip(RETRY_TIMING, ("11", "7", "303"), strict=True)))
    own = [[error] for table in (workflow.contention, workflow.throttle) for error in table.values()]
    retriers = [
        retrier
        for state in asl["States"].values()
        for retrier in state.get("Retry", [])
        if retrier["ErrorEquals"] not in own
    ]
    assert len(retriers) == len(workflow.lambda_steps) + 2  # the Lambda steps and both notifications
    for retrier in retriers:
        assert retrier["IntervalSeconds"] == 11
        assert retrier["MaxAttempts"] == 7
        assert retrier["MaxDelaySeconds"] == 303
        assert retrier["BackoffRate"] >= 1.5
        assert retrier["JitterStrategy"] == "FULL"


@pytest.mark.parametrize("workflow", each_workflow())
def test_retry_defaults_are_valid(sam_template, text, render_asl, workflow):
    parameters = sam_template["Parameters"]
    defaults = {name: str(parameters[name]["Default"]) for name in RETRY_TIMING}
    retrier = render_asl(text, defaults)["States"][workflow.start]["Retry"][-1]
    assert 1 <= retrier["IntervalSeconds"] <= retrier["MaxDelaySeconds"]
    assert retrier["MaxAttempts"] >= 1


@pytest.mark.parametrize("workflow", each_workflow())
def test_lambda_steps_catch_everything_into_their_failed_state(asl, workflow):
    states = asl["States"]
    for step in workflow.failing_steps:
        catchers = states[step]["Catch"]
        if step == workflow.start:
            # A key outside the workflow's prefix ends the execution at once: no record, no notification.
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
    # A failure record that cannot be written must not stop the failure notification.
    (catcher,) = states["RecordFailure"]["Catch"]
    assert catcher["ErrorEquals"] == ["States.ALL"]
    assert catcher["ResultPath"] == "$.record_failure_error"
    assert catcher["ResultPath"] not in {"$", "$.error", "$.failed_step", "$.failure"}
    assert states[catcher["Next"]]["Next"] == "NotifyFailure"


@pytest.mark.parametrize("workflow", each_workflow())
def test_step_inputs_and_results_follow_the_contract(asl, workflow):
    states = asl["States"]
    job = workflow.job_key
    assert asl["StartAt"] == workflow.start
    assert states[workflow.start]["Parameters"] == {
        f"{workflow.input_key}.$": "$",
        "execution_id.$": EXECUTION_ID,
    }
    assert states[workflow.start]["ResultPath"] == "$"
    assert states[workflow.check]["Parameters"] == {f"{job}.$": f"$.{job}", "poll.$": "$.poll"}
    assert states[workflow.check]["ResultPath"] == "$.poll"
    assert states[workflow.archive]["Parameters"] == {
        "source.$": "$.source",
        f"{job}.$": f"$.{job}",
        "poll.$": "$.poll",
        "execution_id.$": EXECUTION_ID,
    }
    assert states[workflow.archive]["ResultPath"] == "$.archive"
    assert states["RecordFailure"]["Parameters"] == {"state.$": "$", "execution_id.$": EXECUTION_ID}
    assert states["RecordFailure"]["ResultPath"] == "$.failure"
    wait = states[workflow.wait]
    assert wait == {**wait, "Type": "Wait", "SecondsPath": "$.poll.wait_seconds"}
    assert wait["Next"] == workflow.check
    assert states["DuplicateEvent"]["Type"] == "Succeed"
    for step in workflow.lambda_steps:
        assert "OutputPath" not in states[step] and "ResultSelector" not in states[step], step


@pytest.mark.parametrize("workflow", each_workflow())
def test_lambda_steps_call_their_own_function(asl, workflow):
    tasks = {name: state for name, state in asl["States"].items() if state["Type"] == "Task"}
    assert set(tasks) == {*workflow.lambda_steps, "NotifySuccess", "NotifyFailure"}
    for step in workflow.lambda_steps:
        # The sample substitution of ${<Step>FunctionArn} ends in ":function:<Step>Function".
        assert tasks[step]["Resource"].endswith(f":function:{step}Function"), step


@pytest.mark.parametrize(
    ("workflow", "state_name", "error"), each_workflow(lambda workflow: list(workflow.outcomes.values()))
)
def test_job_outcomes_raise_the_pipeline_error_names(asl, workflow, state_name, error):
    state = asl["States"][state_name]
    assert state["Type"] == "Pass" and state["ResultPath"] == "$.error"
    assert state["Result"]["Error"] == error
    assert error in subclasses_by_name(pipeline_errors, pipeline_errors.PipelineError)
    assert issubclass(getattr(pipeline_errors, error), pipeline_errors.PermanentPipelineError)
    cause = json.loads(state["Result"]["Cause"])  # shaped like a Lambda error, as RecordFailure reads it
    assert cause["errorType"] == error and cause["errorMessage"]
    assert state["Next"] == f"{workflow.check}Failed"


@pytest.mark.parametrize("workflow", each_workflow())
def test_notifications_publish_the_state_and_never_lose_the_outcome(text, asl, workflow):
    states = asl["States"]
    raw_topic = re.findall(r'"TopicArn":\s*"([^"]+)"', text)
    assert raw_topic == ["${NotificationTopicArn}", "${NotificationTopicArn}"]
    for step, outcome in (("NotifySuccess", "SUCCEEDED"), ("NotifyFailure", "FAILED")):
        state = states[step]
        assert state["Resource"] == "arn:aws:states:::sns:publish"
        # Success: the state (ids and keys only); failure: RecordFailure's curated notification.
        assert (
            state["Parameters"]["Message.$"]
            == {"SUCCEEDED": "$", "FAILED": "$.failure.notification"}[outcome]
        )
        attributes = state["Parameters"]["MessageAttributes"]
        assert attributes["outcome"]["StringValue"] == outcome
        subject = state["Parameters"]["Subject"]
        assert subject.isascii() and len(subject) < 100
        if workflow.notification_workflow:
            assert attributes["workflow"] == {
                "DataType": "String",
                "StringValue": workflow.notification_workflow,
            }
            assert workflow.notification_workflow in subject
        assert state["Retry"], step
        assert [catcher["ErrorEquals"] for catcher in state["Catch"]] == [["States.ALL"]]
        assert state["Catch"][0]["ResultPath"] == "$.notification_error"
    # A run whose success notification fails still succeeded; a failure stays a failure.
    assert states["NotifySuccess"]["Next"] == "Succeeded"
    assert states["NotifySuccess"]["Catch"][0]["Next"] == "SucceededWithoutNotification"
    assert states["SucceededWithoutNotification"]["Type"] == "Succeed"
    assert states["NotifyFailure"]["Next"] == states["NotifyFailure"]["Catch"][0]["Next"] == "Failed"
    assert states["RecordFailure"]["Next"] == "NotifyFailure"


@pytest.mark.parametrize("workflow", each_workflow())
def test_the_failed_end_names_the_trail(asl, workflow):
    fail_states = {name: state for name, state in asl["States"].items() if state["Type"] == "Fail"}
    assert list(fail_states) == ["KeyOutsidePrefix", "Failed"]
    failed = fail_states["Failed"]
    assert failed["Error"] == workflow.failed_error
    assert "failed/" in failed["Cause"] and "notification" in failed["Cause"]


@pytest.mark.parametrize(
    ("workflow", "step"),
    each_workflow(lambda workflow: [(f"{step}Failed",) for step in workflow.failing_steps]),
)
def test_every_failure_path_records_then_notifies(asl, workflow, step):
    states = asl["States"]
    path = [step]
    while not is_terminal(states[path[-1]]):
        path.append(states[path[-1]]["Next"])
    assert path[-3:] == ["RecordFailure", "NotifyFailure", "Failed"]
