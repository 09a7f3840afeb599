"""The Lambda-like runtime on its own: worker processes, warm reuse, Timeout, MemorySize, environment."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from p1_retrain.local.runtime import TIMEOUT_ERROR, DeployedFunction, LambdaRuntime
from p1_retrain.local.template import FunctionSource

HANDLER = """
import os, time

class ModelNotConfigured(Exception):
    pass

STARTED = time.time()

def lambda_handler(event, context):
    if event.get("fail"):
        raise ModelNotConfigured("model 'x' has no key in the secret")
    if event.get("unserializable"):
        return {"value": object()}
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("allocate_mb"):
        blocks = [bytearray(1024 * 1024) for _ in range(event["allocate_mb"])]
        return {"allocated": len(blocks)}
    if event.get("environment"):
        return {"environment": dict(os.environ)}
    left = context.get_remaining_time_in_millis() > 0
    return {"echo": event, "function": context.function_name, "left": left, "pid": os.getpid(),
            "started": STARTED, "memory": context.memory_limit_in_mb}
"""
ROLE_CREDENTIALS = {
    "aws_access_key_id": "FSIAROLESESSION",
    "aws_secret_access_key": "role-secret",
    "aws_session_token": "role-token",
}


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "someone-elses")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ADMINKEY")
    (tmp_path / "app.py").write_text(HANDLER)
    function = DeployedFunction(
        name="stack-Fn-ABC",
        arn="arn:aws:lambda:us-east-1:123456789012:function:stack-Fn-ABC",
        source=FunctionSource("Fn", tmp_path, "app", "lambda_handler"),
        environment={"STATE_TABLE": "table-1"},
        timeout_seconds=30,
        memory_mb=128,
        role_arn="arn:aws:iam::123456789012:role/fn-role",
    )
    runtime = LambdaRuntime(
        [function], "http://127.0.0.1:1", "us-east-1", {function.name: ROLE_CREDENTIALS}, layer_dirs=[]
    )
    yield runtime, function
    runtime.stop()


def _body(invocation) -> dict:
    return json.loads(invocation.payload)


def test_runtime_answers_like_lambda(runtime):
    runtime, function = runtime
    assert runtime.resolve(function.arn) is function
    assert runtime.resolve(f"{function.arn}:$LATEST") is function
    assert runtime.resolve("stack-Fn-ABC") is function
    assert runtime.resolve("other") is None

    ok = runtime.invoke(function, b'{"a": 1}')
    assert ok.error is None
    body = _body(ok)
    assert (body["echo"], body["function"], body["left"], body["memory"]) == (
        {"a": 1},
        function.name,
        True,
        128,
    )
    assert body["pid"] != os.getpid()

    failed = runtime.invoke(function, json.dumps({"fail": True}))
    error = _body(failed)
    assert failed.error == "Unhandled"
    assert error["errorType"] == "ModelNotConfigured"
    assert error["errorMessage"] == "model 'x' has no key in the secret"
    assert "worker.py" not in "".join(error["stackTrace"])
    assert any("app.py" in frame for frame in error["stackTrace"])
    assert any("ModelNotConfigured" in line.text for line in runtime.lines())

    unserializable = runtime.invoke(function, json.dumps({"unserializable": True}))
    assert unserializable.error == "Unhandled"
    assert _body(unserializable)["errorType"] == "Runtime.MarshalError"


def test_an_invocation_returns_once_its_log_lines_are_read(runtime, monkeypatch):
    """On a busy machine the log readers lag behind the answer: invoke still returns with every line its
    invocation wrote (through END) already in ``lines()``."""
    runtime, function = runtime
    read_log, take_answer = LambdaRuntime._read_log, LambdaRuntime._answer
    answered = threading.Event()

    def lagging_reader(self, worker, fd, name):
        answered.wait(30)  # the readers start reading only once the answer is in
        read_log(self, worker, fd, name)

    def answer(self, worker, deadline):
        value = take_answer(self, worker, deadline)
        # The invocation's answer, not the cold start's "ready".
        if isinstance(value, dict) and not value.get("ready"):
            threading.Timer(0.3, answered.set).start()
        return value

    monkeypatch.setattr(LambdaRuntime, "_read_log", lagging_reader)
    monkeypatch.setattr(LambdaRuntime, "_answer", answer)
    failed = runtime.invoke(function, json.dumps({"fail": True}))
    assert failed.error == "Unhandled"
    texts = [line.text for line in runtime.lines()]
    assert any("ModelNotConfigured" in text for text in texts), texts
    assert texts[-1].startswith("END RequestId: "), texts


def test_a_warm_worker_is_reused_and_overlapping_invocations_get_their_own(runtime):
    runtime, function = runtime
    first = runtime.invoke(function, b"{}")
    second = runtime.invoke(function, b"{}")

    assert (first.cold_start, second.cold_start) == (True, False)
    assert _body(first)["pid"] == _body(second)["pid"]
    assert _body(first)["started"] == _body(second)["started"]  # module state survives: one init
    assert runtime.cold_starts[function.name] == 1

    barrier = threading.Barrier(2)
    answers = []

    def invoke() -> None:
        barrier.wait(timeout=10)
        answers.append(runtime.invoke(function, json.dumps({"sleep": 0.5})))

    threads = [threading.Thread(target=invoke) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len({_body(answer)["pid"] for answer in answers}) == 2
    assert runtime.cold_starts[function.name] == 2  # one warm worker reused, one new


def test_an_invocation_past_its_timeout_is_killed_with_lambdas_error(runtime):
    runtime, function = runtime
    function = replace(function, timeout_seconds=1)
    warm = runtime.invoke(function, b"{}")

    timed_out = runtime.invoke(function, json.dumps({"sleep": 60}))

    body = _body(timed_out)
    assert timed_out.error == "Unhandled"
    assert body["errorType"] == TIMEOUT_ERROR == "Sandbox.Timedout"
    assert (
        body["errorMessage"] == f"RequestId: {timed_out.request_id} Error: Task timed out after 1.00 seconds"
    )
    assert timed_out.worker_pid == warm.worker_pid
    assert warm.worker_pid not in runtime.pids()  # the environment was ended with the invocation
    after = runtime.invoke(function, b"{}")
    assert after.cold_start is True and after.error is None


def test_memory_size_is_the_workers_limit(runtime):
    runtime, function = runtime

    small = runtime.invoke(function, json.dumps({"allocate_mb": 16}))
    too_much = runtime.invoke(function, json.dumps({"allocate_mb": 512}))

    assert small.error is None
    assert too_much.error == "Unhandled"
    assert _body(too_much)["errorType"] == "Runtime.OutOfMemory"
    assert too_much.worker_pid not in runtime.pids()


def test_a_worker_sees_its_functions_environment_and_role_session_only(runtime):
    runtime, function = runtime

    environment = _body(runtime.invoke(function, json.dumps({"environment": True})))["environment"]

    assert environment["STATE_TABLE"] == "table-1"
    assert environment["AWS_ACCESS_KEY_ID"] == "FSIAROLESESSION"
    assert environment["AWS_SESSION_TOKEN"] == "role-token"
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == function.name
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert "AWS_PROFILE" not in environment
    assert "ADMINKEY" not in json.dumps(environment)


def test_stop_leaves_no_worker(runtime):
    runtime, function = runtime
    runtime.invoke(function, b"{}")
    pids = runtime.pids()
    assert len(pids) == 1

    runtime.stop()

    assert runtime.pids() == []
    assert not Path(f"/proc/{pids[0]}").exists()
