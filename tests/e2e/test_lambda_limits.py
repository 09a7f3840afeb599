"""The template's functions under Lambda's limits and identities, end to end on one local stack."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from p1_retrain.local.data import synthetic_csv
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack
from tests.e2e.conftest import RUN_TIMEOUT, TEMPLATE

# CheckStatus may run 1 s here; the emulator answers its status requests after 5 s.
CHECK_STATUS_TIMEOUT = 1
SLOW_STATUS = {"rate": 1.0, "kinds": ["slow"], "endpoints": ["retrain_status"], "slow_seconds": 5}


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[LocalStack, object]]:
    from p1_retrain.emulator import EmulatorServer

    keys = {"slow": f"slow-{secrets.token_hex(8)}"}
    with (
        EmulatorServer(port=0, models=keys, job_seconds=0.5) as emulator,
        LocalStack(
            TEMPLATE,
            emulator.base_url,
            keys,
            FAST_PARAMETERS,
            function_overrides={"CheckStatusFunction": {"Timeout": CHECK_STATUS_TIMEOUT}},
        ) as stack,
    ):
        emulator.admin.set_faults(**SLOW_STATUS)
        yield stack, emulator


def test_a_step_past_its_timeout_is_killed_and_recorded_as_on_aws(limited):
    stack, _ = limited
    key = "incoming/slow/data.csv"
    version = stack.put_object(key, synthetic_csv(1))

    (run,) = [run for run in stack.wait_all(RUN_TIMEOUT) if (run.key, run.version_id) == (key, version)]

    assert run.status == "FAILED"
    history = stack.execution_history(run.execution_arn)
    failed = [
        event["lambdaFunctionFailedEventDetails"]
        for event in history
        if "lambdaFunctionFailedEventDetails" in event
    ]
    assert failed, [event["type"] for event in history]
    assert failed[0]["error"] == "Sandbox.Timedout"
    cause = json.loads(failed[0]["cause"])
    assert cause["errorType"] == "Sandbox.Timedout"
    assert cause["errorMessage"].endswith(f"Task timed out after {CHECK_STATUS_TIMEOUT:.2f} seconds")
    record = json.loads(stack.read_object(run.failure["failure_key"]))
    assert record["error"] == "Sandbox.Timedout"
    assert record["step"] == "CheckStatus"


def test_functions_run_as_their_own_roles_never_as_the_stack(limited):
    stack, _ = limited
    admin_key = stack.admin_credentials["aws_access_key_id"]
    for function in stack.runtime.functions.values():
        environment = stack.runtime.environment(function)
        assert environment["AWS_ACCESS_KEY_ID"] != admin_key
        assert admin_key not in json.dumps(environment)
        session = {
            name.lower(): environment[name]
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
        }
        identity = stack.client("sts", session).get_caller_identity()["Arn"]
        role_name = function.role_arn.rsplit("/", 1)[1]
        assert identity.startswith(f"arn:aws:sts::{stack.account_id}:assumed-role/{role_name}/")


def test_a_function_role_is_denied_what_its_policy_does_not_allow(limited):
    stack, _ = limited
    from botocore.exceptions import ClientError

    stack.put_object("results/slow/other.csv", b"x")
    (record_failure,) = [f for f in stack.runtime.functions.values() if "RecordFailure" in f.name]
    environment = stack.runtime.environment(record_failure)
    session = {
        name.lower(): environment[name]
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }
    s3 = stack.client("s3", session)

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.get_object(Bucket=stack.bucket, Key="results/slow/other.csv")
    s3.put_object(Bucket=stack.bucket, Key="failed/slow/allowed.json", Body=b"{}")


def _deny(action: str, resource: str):
    """An ``_authorize`` that denies one action on one resource (what a missing statement does)."""

    def authorize(role_arn: str, asked: str, on: str) -> None:
        if (asked, on) == (action, resource):
            raise PermissionError(f"{role_arn} may not {asked} on {on}")

    return authorize


def test_a_state_machine_role_denied_lambda_invoke_fails_the_step_as_on_aws(limited, monkeypatch):
    stack, _ = limited
    (upload,) = [f for f in stack.runtime.functions.values() if "UploadFunction" in f.name]
    monkeypatch.setattr(stack, "_authorize", _deny("lambda:InvokeFunction", upload.arn))
    key = "incoming/slow/denied.csv"
    version = stack.put_object(key, synthetic_csv(2))

    (run,) = [run for run in stack.wait_all(RUN_TIMEOUT) if (run.key, run.version_id) == (key, version)]

    assert run.status == "FAILED"
    history = stack.execution_history(run.execution_arn)
    failures = [
        event["lambdaFunctionFailedEventDetails"]
        for event in history
        if "lambdaFunctionFailedEventDetails" in event
    ]
    assert failures and failures[0]["error"] == "Lambda.AWSLambdaException"
    assert (
        f"is not authorized to perform: lambda:InvokeFunction on resource: {upload.arn}"
        in failures[0]["cause"]
    )
    assert "assumed-role/" in failures[0]["cause"]
    record = json.loads(stack.read_object(run.failure["failure_key"]))
    assert (record["error"], record["step"]) == ("Lambda.AWSLambdaException", "Upload")


def test_a_rule_role_denied_start_execution_dead_letters_the_event(limited, monkeypatch):
    stack, _ = limited
    retrain = stack.state_machines["RetrainStateMachine"]
    monkeypatch.setattr(stack, "_authorize", _deny("states:StartExecution", retrain))
    before = len(stack.runs())
    undelivered = len(stack.undelivered)

    stack.put_object("incoming/slow/undelivered.csv", synthetic_csv(3))
    started = stack.pump_events()

    assert started == []
    assert len(stack.runs()) == before
    (record,) = stack.undelivered[undelivered:]
    assert "states:StartExecution" in record["message"]
    dlq = stack.sqs.get_queue_url(QueueName=stack.resources["EventsDeadLetterQueue"].rsplit("/", 1)[-1])
    messages = stack.sqs.receive_message(
        QueueUrl=dlq["QueueUrl"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    bodies = [json.loads(message["Body"])["detail"]["object"]["key"] for message in messages]
    assert "incoming/slow/undelivered.csv" in bodies


def test_powertools_invocation_state_is_each_workers_own(limited):
    stack, emulator = limited
    emulator.admin.clear_faults()
    try:
        for index in range(2):  # the second file finds the functions warm
            stack.put_object(f"incoming/slow/powertools-{index}.csv", synthetic_csv(4 + index))
            stack.wait_all(RUN_TIMEOUT)
    finally:
        emulator.admin.set_faults(**SLOW_STATUS)

    structured = []
    for line in stack.log_lines():
        try:
            record = json.loads(line.text)
        except ValueError:
            continue
        if isinstance(record, dict) and "function_name" in record:
            structured.append((line.function, record))
    assert structured
    assert [
        (function, record["function_name"])
        for function, record in structured
        if function != record["function_name"]
    ] == []
    cold = {}
    for function, record in structured:
        cold.setdefault((function, record["function_request_id"]), record["cold_start"])
    starts = sum(stack.runtime.cold_starts.values())
    assert sum(1 for value in cold.values() if value) <= starts
    assert any(value is False for value in cold.values())  # warm invocations know they are warm


def test_events_pass_the_s3_event_rewriter_before_they_start_a_run(limited, monkeypatch):
    stack, _ = limited
    rewritten = []

    def rewrite(event):
        event = {**event, "time": "2026-01-02T03:04:05.678Z"}
        rewritten.append(event["detail"]["object"]["key"])
        return event

    monkeypatch.setattr(stack, "_rewrite_s3_event", rewrite)
    key = "incoming/slow/rewritten.csv"
    stack.put_object(key, synthetic_csv(9))

    (arn,) = stack.pump_events()

    assert rewritten == [key]
    started = stack.execution_history(arn)[0]["executionStartedEventDetails"]["input"]
    assert json.loads(started)["time"] == "2026-01-02T03:04:05.678Z"
    stack.wait_all(RUN_TIMEOUT)
