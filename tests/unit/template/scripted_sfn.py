"""Run a real state machine definition in moto's Step Functions interpreter with scripted Lambda answers.

Shared by the retrain and the training-watch execution tests: each Lambda task is answered by a script per
step (a return value, or an error of a given name); SNS is moto's, its messages drained from an SQS queue.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
from moto import mock_aws
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.utils import TMP_THREADS

REGION = "us-east-1"
ACCOUNT = "123456789012"
RETRY_MAX_ATTEMPTS = 2
RETRY_MAX_DELAY = 3
EXECUTION_TIMEOUT = 30.0
EXECUTIONS = itertools.count()  # numbers the executions, whose names must be unique in a machine

Answer = dict[str, Any] | Exception | Callable[[dict[str, Any]], Any]


class FunctionError(Exception):
    """A scripted Lambda failure: ``errorType`` becomes the ASL error name."""

    def __init__(self, error_type: str, message: str = "scripted failure") -> None:
        super().__init__(message)
        self.error_type = error_type


def function_step(function: str, payload: dict[str, Any]) -> str:
    """The step a function serves: its logical name without ``Function``."""
    return function.removesuffix("Function")


@dataclass
class ScriptedFunctions:
    """Answers Lambda invocations from per-step scripts; the last answer repeats."""

    scripts: dict[str, list[Answer]]
    step_of: Callable[[str, dict[str, Any]], str] = function_step
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        payload = json.loads(parameters["Payload"])
        step = self.step_of(parameters["FunctionName"].rsplit(":", 1)[-1], payload)
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


def wait_for_executions(started: int, deadline: float) -> None:
    """Join the interpreter threads started since ``started`` (they may start more while running)."""
    while True:
        pending = [thread for thread in TMP_THREADS[started:] if thread.is_alive()]
        if not pending:
            return
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the execution did not finish in time"
        pending[0].join(timeout=remaining)


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message in the queue (deleted once read)."""
    bodies = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@contextmanager
def notifying_stack() -> Iterator[SimpleNamespace]:
    """moto with a notification topic whose messages land in an SQS queue."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        topic_arn = sns.create_topic(Name="notifications")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        yield SimpleNamespace(sfn=sfn, sqs=sqs, queue_url=queue_url, topic_arn=topic_arn)


def deploy(
    stack: SimpleNamespace, text: str, render_asl: Callable[..., dict[str, Any]], name: str
) -> SimpleNamespace:
    """Two copies of the real definition in ``stack``: one notifying its topic, one a missing topic."""
    machines = {}
    for topic_exists, topic in (
        (True, stack.topic_arn),
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
        machines[topic_exists] = stack.sfn.create_state_machine(
            name=f"{name}-{'notifying' if topic_exists else 'unnotified'}",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
        )["stateMachineArn"]
    return SimpleNamespace(sfn=stack.sfn, sqs=stack.sqs, queue_url=stack.queue_url, machines=machines)


@contextmanager
def deployed(text: str, render_asl: Callable[..., dict[str, Any]], name: str) -> Iterator[SimpleNamespace]:
    """moto with two copies of the real definition: one notifying a live topic, one a missing topic."""
    with notifying_stack() as stack:
        yield deploy(stack, text, render_asl, name)


def runner(
    monkeypatch: Any,
    aws: SimpleNamespace,
    test_name: str,
    step_of: Callable[[str, dict[str, Any]], str] = function_step,
) -> Callable[..., Run]:
    """``run(scripts, execution_input, topic_exists=True)``: one execution of the deployed definition,
    with retry sleeps recorded instead of slept."""
    retry_delays: list[float] = []
    monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=retry_delays.append))
    drain(aws.sqs, aws.queue_url)

    def run(scripts: dict[str, list[Answer]], execution_input: Any, *, topic_exists: bool = True) -> Run:
        functions = ScriptedFunctions({name: list(answers) for name, answers in scripts.items()}, step_of)
        monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", functions.invoke)
        started = len(TMP_THREADS)
        name = re.sub(r"[^A-Za-z0-9_-]", "-", test_name)[:70] + f"-{next(EXECUTIONS)}"
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


@dataclass
class Routed:
    """Where one Choice state sent an input: the state it chose, or the error it failed with."""

    target: str | None
    error: str | None


@contextmanager
def choice_router(definition: dict[str, Any]) -> Iterator[Callable[[str, Any], Routed]]:
    """``route(choice, data)``: run the Choice state ``choice`` of ``definition`` alone in moto's
    interpreter over ``data`` (each state it can choose is a Pass state naming itself)."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machines: dict[str, str] = {}
        runs = iter(range(10_000))

        def machine(choice: str) -> str:
            if choice not in machines:
                state = definition["States"][choice]
                assert state["Type"] == "Choice"
                targets = {rule["Next"] for rule in state["Choices"]} | {state["Default"]}
                ends = {to: {"Type": "Pass", "Result": {"chosen": to}, "End": True} for to in targets}
                alone = {"StartAt": choice, "States": {choice: state, **ends}}
                machines[choice] = sfn.create_state_machine(
                    name=f"choice-{choice}",
                    definition=json.dumps(alone),
                    roleArn=f"arn:aws:iam::{ACCOUNT}:role/choice",
                )["stateMachineArn"]
            return machines[choice]

        def route(choice: str, data: Any) -> Routed:
            started = len(TMP_THREADS)
            arn = sfn.start_execution(
                stateMachineArn=machine(choice), name=f"{choice}-{next(runs)}", input=json.dumps(data)
            )["executionArn"]
            wait_for_executions(started, time.monotonic() + EXECUTION_TIMEOUT)
            description = sfn.describe_execution(executionArn=arn)
            if description["status"] == "SUCCEEDED":
                return Routed(json.loads(description["output"])["chosen"], None)
            assert description["status"] == "FAILED", description
            return Routed(None, description.get("error"))

        yield route
