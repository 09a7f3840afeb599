"""A function killed at its Timeout, end to end: Lambda's error, and the run handled as on AWS."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from p1_retrain.local.data import synthetic_csv
from p1_retrain.local.stack import LocalStack
from tests.e2e.conftest import lambda_failures, one_model_stack, run_of_object

UPLOAD_TIMEOUT = 3


class _SilentEndpoint:
    """A loopback TCP endpoint that accepts connections and never answers (a hung dependency)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self._held.append(connection)

    def close(self) -> None:
        self._closed.set()
        self._socket.close()
        for connection in self._held:
            connection.close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def hung_s3() -> Iterator[LocalStack]:
    """A stack whose Upload function (Timeout 3 s) reaches S3 through an endpoint that never answers: the
    client's time budget covers Prediction One calls only, so the invocation hangs until Lambda kills it."""
    silent = _SilentEndpoint()
    override = {"Timeout": UPLOAD_TIMEOUT, "Environment": {"AWS_ENDPOINT_URL_S3": silent.url}}
    try:
        with one_model_stack("hung", {"UploadFunction": override}) as (stack, _):
            yield stack
    finally:
        silent.close()


def test_a_step_past_its_timeout_is_killed_and_recorded_as_on_aws(hung_s3):
    stack = hung_s3
    key = "incoming/hung/data.csv"
    version = stack.put_object(key, synthetic_csv(1))

    run = run_of_object(stack, key, version)

    assert run.status == "FAILED"
    failed = lambda_failures(stack, run)
    assert failed, [event["type"] for event in stack.execution_history(run.execution_arn)]
    assert len(failed) == 1, "Upload has side effects: it is not run again after a timeout"
    assert failed[0]["error"] == "Sandbox.Timedout"
    cause = json.loads(failed[0]["cause"])
    assert cause["errorType"] == "Sandbox.Timedout"
    assert cause["errorMessage"].endswith(f"Task timed out after {UPLOAD_TIMEOUT:.2f} seconds")
    record = json.loads(stack.read_object(run.failure["failure_key"]))
    assert record["error"] == "Sandbox.Timedout"
    assert record["step"] == "Upload"
    assert stack.read_object(key, version) == synthetic_csv(1), "the source object stays"
