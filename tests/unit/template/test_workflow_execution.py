"""Run both workflows' definitions in moto's Step Functions interpreter with scripted Lambda answers.

Every behaviour the retrain and the training-watch workflows share is one test over both machines: polling
to success, duplicates, transient retries, caught failures, job failure and deadline, notifications that
cannot be published, and where AWS is stricter than moto. What only one workflow does is in
test_statemachine_execution.py (retrain) and test_train_watch_execution.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.unit.template.scripted_sfn import (
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_DELAY,
    Answer,
    FunctionError,
    Run,
    deploy,
    notifying_stack,
    runner,
)
from tests.unit.template.workflows import WORKFLOWS, Failure, Workflow, each_workflow


@pytest.fixture(scope="module")
def deployments(state_machine_sources, render_asl) -> Iterator[dict[str, SimpleNamespace]]:
    """Both workflows deployed in one moto, by workflow id."""
    with notifying_stack() as stack:
        yield {
            workflow.id: deploy(stack, state_machine_sources[workflow.machine][1], render_asl, workflow.id)
            for workflow in WORKFLOWS
        }


@pytest.fixture
def run(monkeypatch, deployments, load_event, request, workflow):
    """``run(scripts, topic_exists=True)``: one execution of ``workflow``'s real definition."""
    run_once = runner(monkeypatch, deployments[workflow.id], request.node.name)
    event = load_event(workflow.event)

    def run_workflow(scripts: dict[str, list[Answer]], *, topic_exists: bool = True) -> Run:
        return run_once(scripts, event, topic_exists=topic_exists)

    return run_workflow


def single_notification(run: Run, workflow: Workflow, outcome: str) -> dict[str, Any]:
    (notification,) = run.notifications
    attributes = notification["MessageAttributes"]
    assert attributes["outcome"]["Value"] == outcome
    if workflow.notification_workflow:
        assert attributes["workflow"]["Value"] == workflow.notification_workflow
    return json.loads(notification["Message"])


@pytest.mark.parametrize("workflow", each_workflow())
def test_a_running_job_is_polled_then_archived(run, load_event, workflow):
    running = workflow.poll("running")
    run = run(
        {
            workflow.start: [workflow.start_answer()],
            workflow.check: [running, running, workflow.poll("finished")],
            workflow.archive: [workflow.archive_result],
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [workflow.start, *[workflow.check] * 3, workflow.archive]
    (start,) = run.functions.called(workflow.start)
    assert start == {workflow.input_key: load_event(workflow.event), "execution_id": run.execution_arn}
    checks = run.functions.called(workflow.check)
    assert all(set(check) == {workflow.job_key, "poll"} for check in checks)
    assert [check["poll"]["polls"] for check in checks] == [workflow.first_polls + n for n in range(3)]
    (archive,) = run.functions.called(workflow.archive)
    assert set(archive) == {"source", workflow.job_key, "poll", "execution_id"}
    assert archive["execution_id"] == run.execution_arn and archive["poll"]["state"] == "finished"
    assert run.output["archive"] == workflow.archive_result
    assert "switch" not in run.output
    assert run.output["notification"]["message_id"]
    message = single_notification(run, workflow, "SUCCEEDED")
    assert message["archive"]["result_key"] == workflow.archive_result["result_key"]
    field, value = workflow.job_id
    assert message[workflow.job_key][field] == value


@pytest.mark.parametrize("workflow", each_workflow())
def test_a_duplicate_event_ends_quietly(run, workflow):
    run = run({workflow.start: [workflow.start_answer(duplicate=True)]})
    assert run.status == "SUCCEEDED"
    assert run.functions.order == [workflow.start]
    assert run.notifications == []


@pytest.mark.parametrize("workflow", each_workflow())
def test_transient_errors_are_retried_with_bounded_backoff(run, workflow):
    run = run(
        {
            step: [FunctionError(workflow.transient[step]), *answers]
            for step, answers in workflow.success.items()
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [step for step in workflow.success for _ in range(2)]
    assert len(run.retry_delays) == len(workflow.success)
    assert all(0 <= delay <= RETRY_MAX_DELAY for delay in run.retry_delays)


@pytest.mark.parametrize(
    ("workflow", "error", "failure"),
    each_workflow(lambda workflow: [(failure.error.error_type, failure) for failure in workflow.failures]),
)
def test_each_step_failure_is_recorded_and_notified_once(run, load_event, workflow, error, failure: Failure):
    run = run({**failure.before, failure.step: [failure.error], "RecordFailure": [workflow.record_answer]})
    assert run.status == "FAILED"
    assert run.description["error"] == workflow.failed_error
    assert run.functions.order == [*failure.before, *[failure.step] * failure.attempts, "RecordFailure"]
    (record,) = run.functions.called("RecordFailure")
    assert record["execution_id"] == run.execution_arn
    state = record["state"]
    assert (state["failed_step"], state["error"]["Error"]) == (failure.step, error)
    assert json.loads(state["error"]["Cause"])["errorMessage"] == str(failure.error)
    if failure.step == workflow.start:
        assert state["detail"] == load_event(workflow.event)["detail"]  # the raw event is still there
        assert state["detail"]["object"]["key"].startswith(workflow.prefix)
    message = single_notification(run, workflow, "FAILED")
    # The notification is RecordFailure's, never the state: no Cause, no raw event.
    assert message == workflow.record_answer(record)["notification"]


@pytest.mark.parametrize(
    ("workflow", "outcome"), each_workflow(lambda workflow: [("failed",), ("deadline",)])
)
def test_job_outcomes_take_the_failure_path(run, workflow, outcome):
    run = run(
        {
            workflow.start: [workflow.start_answer()],
            workflow.check: [workflow.poll("running"), workflow.poll(outcome)],
            "RecordFailure": [workflow.record_answer],
        }
    )
    _, error = workflow.outcomes[outcome]
    assert run.status == "FAILED"
    assert run.functions.order == [workflow.start, workflow.check, workflow.check, "RecordFailure"]
    state = run.functions.called("RecordFailure")[0]["state"]
    assert (state["failed_step"], state["error"]["Error"]) == (workflow.check, error)
    assert json.loads(state["error"]["Cause"])["errorType"] == error
    assert state["poll"]["status"] == workflow.statuses[outcome]
    field, value = workflow.job_id
    assert state[workflow.job_key][field] == value
    single_notification(run, workflow, "FAILED")


@pytest.mark.parametrize("workflow", each_workflow())
def test_a_failure_record_that_cannot_be_written_is_still_notified(run, workflow):
    run = run(
        {
            workflow.start: [FunctionError("ModelNotConfigured")],
            "RecordFailure": [FunctionError("AccessDenied")],
        }
    )
    assert run.status == "FAILED"
    message = single_notification(run, workflow, "FAILED")
    assert message["error"] == "ModelNotConfigured"
    assert message["failure_record"] is None and message["execution_id"] == run.execution_arn
    assert "Cause" not in json.dumps(message) and "AccessDenied" not in json.dumps(message)


@pytest.mark.parametrize("workflow", each_workflow())
def test_a_success_notification_that_cannot_be_published_keeps_the_success(run, workflow):
    run = run(dict(workflow.success), topic_exists=False)
    assert run.status == "SUCCEEDED"
    assert run.output["archive"] == workflow.archive_result
    assert run.output["notification_error"]["Error"].startswith("SNS.")
    assert "notification" not in run.output


@pytest.mark.parametrize("workflow", each_workflow())
def test_a_failure_notification_that_cannot_be_published_still_fails(run, workflow):
    run = run(
        {workflow.start: [FunctionError("UserDeleted")], "RecordFailure": [workflow.record_answer]},
        topic_exists=False,
    )
    assert run.status == "FAILED"
    assert run.description["error"] == workflow.failed_error


# Where AWS is stricter than moto


@pytest.mark.parametrize("workflow", each_workflow())
def test_a_key_outside_the_prefix_ends_at_once_without_record_or_notification(run, workflow):
    """However the rule is written, an object the pipeline wrote (results/, failed/) cannot loop."""
    run = run({workflow.start: [FunctionError("KeyOutsidePrefix", workflow.outside_key)]})
    assert run.status == "FAILED"
    assert run.description["error"] == "KeyOutsidePrefix"
    assert run.functions.order == [workflow.start]  # no retry, no RecordFailure
    assert run.notifications == []


@pytest.mark.parametrize(
    ("workflow", "timeout_error"),
    each_workflow(lambda workflow: [("Sandbox.Timedout",), ("Lambda.Unknown",)]),
)
def test_read_only_steps_killed_at_their_timeout_are_retried(run, workflow, timeout_error):
    run = run(
        {
            step: [FunctionError(timeout_error), *answers] if step in workflow.read_only else answers
            for step, answers in workflow.success.items()
        }
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [
        step for step in workflow.success for _ in range(2 if step in workflow.read_only else 1)
    ]


@pytest.mark.parametrize(
    ("workflow", "step"),
    each_workflow(
        lambda workflow: [(step,) for step in workflow.failing_steps if step not in workflow.read_only]
    ),
)
def test_steps_with_side_effects_are_not_rerun_after_a_timeout(run, workflow, step):
    scripts = {
        **workflow.success,
        step: [FunctionError("Sandbox.Timedout")],
        "RecordFailure": [workflow.record_answer],
    }
    run = run(scripts)
    assert run.status == "FAILED"
    assert run.functions.order.count(step) == 1
    assert run.functions.called("RecordFailure")[0]["state"]["failed_step"] == step


@pytest.mark.parametrize(
    ("workflow", "step", "error"), each_workflow(lambda workflow: list(workflow.contention.items()))
)
def test_contention_outlasts_the_generic_retry_budget(run, workflow, step, error):
    waits = RETRY_MAX_ATTEMPTS + 3
    run = run({**workflow.success, step: [*[FunctionError(error)] * waits, *workflow.success[step]]})
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order.count(step) == waits + 1
