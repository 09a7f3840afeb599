"""The template's functions under Lambda's limits and identities, end to end on one local stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from p1_retrain.local.data import synthetic_csv
from p1_retrain.local.stack import LocalStack
from tests.e2e.conftest import RUN_TIMEOUT, lambda_failures, one_model_stack, run_of_object

# CheckStatus may run 1 s here; the emulator answers its status requests after 5 s.
CHECK_STATUS_TIMEOUT = 1
SLOW_STATUS = {"rate": 1.0, "kinds": ["slow"], "endpoints": ["retrain_status"], "slow_seconds": 5}


@pytest.fixture(scope="module")
def limited() -> Iterator[tuple[LocalStack, object]]:
    overrides = {"CheckStatusFunction": {"Timeout": CHECK_STATUS_TIMEOUT}}
    with one_model_stack("slow", overrides) as (stack, emulator):
        emulator.admin.set_faults(**SLOW_STATUS)
        yield stack, emulator


def _session(stack: LocalStack, function) -> dict[str, str]:
    """The credentials a function's worker runs with, as keyword names of a boto3 session."""
    environment = stack.runtime.environment(function)
    return {
        name.lower(): environment[name]
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
    }


def test_functions_run_as_their_own_roles_never_as_the_stack(limited):
    stack, _ = limited
    admin_key = stack.admin_credentials["aws_access_key_id"]
    for function in stack.runtime.functions.values():
        environment = stack.runtime.environment(function)
        assert environment["AWS_ACCESS_KEY_ID"] != admin_key
        assert admin_key not in json.dumps(environment)
        identity = stack.client("sts", _session(stack, function)).get_caller_identity()["Arn"]
        role_name = function.role_arn.rsplit("/", 1)[1]
        assert identity.startswith(f"arn:aws:sts::{stack.account_id}:assumed-role/{role_name}/")


def test_a_function_role_is_denied_what_its_policy_does_not_allow(limited):
    stack, _ = limited
    from botocore.exceptions import ClientError

    stack.put_object("results/slow/other.csv", b"x")
    (record_failure,) = [f for f in stack.runtime.functions.values() if "RecordFailure" in f.name]
    s3 = stack.client("s3", _session(stack, record_failure))

    with pytest.raises(ClientError, match="AccessDenied"):
        s3.get_object(Bucket=stack.bucket, Key="results/slow/other.csv")
    s3.put_object(Bucket=stack.bucket, Key="failed/slow/allowed.json", Body=b"{}")


def test_a_function_role_is_denied_the_secret_and_table_its_policy_does_not_name(limited):
    """Secrets Manager and DynamoDB, which moto authorizes against ``*``, are decided on the real ARN."""
    stack, _ = limited
    from botocore.exceptions import ClientError

    (record_failure,) = [f for f in stack.runtime.functions.values() if "RecordFailure" in f.name]
    (switch,) = [f for f in stack.runtime.functions.values() if "SwitchModel" in f.name]
    table = stack.resources["StateTable"]

    secrets_client = stack.client("secretsmanager", _session(stack, record_failure))
    with pytest.raises(ClientError) as denied:
        secrets_client.get_secret_value(SecretId=stack.secret_arn)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert (
        f"not authorized to perform: secretsmanager:GetSecretValue on resource: {stack.secret_arn}"
        in denied.value.response["Error"]["Message"]
    )
    dynamodb = stack.client("dynamodb", _session(stack, record_failure))
    with pytest.raises(ClientError, match="dynamodb:GetItem on resource: arn:aws:dynamodb:"):
        dynamodb.get_item(TableName=table, Key={"id": {"S": "x"}})
    # The role whose statements name the table and the secret may use them.
    assert "Item" not in stack.client("dynamodb", _session(stack, switch)).get_item(
        TableName=table, Key={"id": {"S": "x"}}
    )
    assert stack.client("secretsmanager", _session(stack, switch)).get_secret_value(
        SecretId=stack.secret_arn
    )["ARN"]


@contextmanager
def _denied(stack: LocalStack, role_arn: str, action: str, resource: str) -> Iterator[None]:
    """An explicit deny of one action on one resource in the role's deployed policies, for the block."""
    role, name = role_arn.rsplit("/", 1)[-1], "LocalTestDeny"
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": action, "Resource": resource}],
    }
    stack.iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))
    try:
        yield
    finally:
        stack.iam.delete_role_policy(RoleName=role, PolicyName=name)


def test_a_state_machine_role_denied_lambda_invoke_fails_the_step_as_on_aws(limited):
    stack, _ = limited
    (upload,) = [f for f in stack.runtime.functions.values() if "UploadFunction" in f.name]
    retrain = stack.state_machines["RetrainStateMachine"]
    role_arn = stack.sfn.describe_state_machine(stateMachineArn=retrain)["roleArn"]
    key = "incoming/slow/denied.csv"
    with _denied(stack, role_arn, "lambda:InvokeFunction", upload.arn):
        version = stack.put_object(key, synthetic_csv(2))
        run = run_of_object(stack, key, version)

    assert run.status == "FAILED"
    failures = lambda_failures(stack, run)
    assert failures and failures[0]["error"] == "Lambda.AWSLambdaException"
    assert (
        f"is not authorized to perform: lambda:InvokeFunction on resource: {upload.arn}"
        in failures[0]["cause"]
    )
    assert "assumed-role/" in failures[0]["cause"]
    record = json.loads(stack.read_object(run.failure["failure_key"]))
    assert (record["error"], record["step"]) == ("Lambda.AWSLambdaException", "Upload")


def test_a_rule_role_denied_start_execution_dead_letters_the_event(limited):
    stack, _ = limited
    retrain = stack.state_machines["RetrainStateMachine"]
    (role_arn,) = {
        target["RoleArn"]
        for targets in stack.rule_targets.values()
        for target in targets
        if target.get("Arn") == retrain and target.get("RoleArn")
    }
    before = len(stack.runs())
    undelivered = len(stack.undelivered)

    with _denied(stack, role_arn, "states:StartExecution", retrain):
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
    stack.wait_all(RUN_TIMEOUT)  # the execution's history starts in a thread of its own
    started = stack.execution_history(arn)[0]["executionStartedEventDetails"]["input"]
    assert json.loads(started)["time"] == "2026-01-02T03:04:05.678Z"
