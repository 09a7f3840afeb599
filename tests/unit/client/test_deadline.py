"""The invocation deadline: retries inside one call stop when the Lambda invocation cannot hold another
attempt, and the call ends with its transient error instead of being killed by Lambda."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prediction_one import PredictionOneClient
from prediction_one.deadline import SAFETY_SECONDS, fit_timeouts, invocation_deadline, remaining
from prediction_one.errors import ConnectionFailed, ServerError
from prediction_one.settings import ClientSettings

from tests.fakes import FakeContext, JsonHandler, serving


class AlwaysBusy(JsonHandler):
    """Answers every request 503 (retried by the client) and counts them."""

    count = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with AlwaysBusy.lock:
            AlwaysBusy.count += 1
        self.send_json(503, {"message": "busy"})


@pytest.fixture
def busy_server() -> Iterator[str]:
    AlwaysBusy.count = 0
    with serving(AlwaysBusy) as base_url:
        yield base_url


def client(base_url: str) -> PredictionOneClient:
    settings = ClientSettings(
        base_url=base_url,
        connect_timeout=1.0,
        read_timeout=10.0,
        max_retries=4,
        backoff_factor=0.01,
        backoff_jitter=0.0,
    )
    return PredictionOneClient("demo-key", settings)


def test_without_a_deadline_every_retry_is_made(busy_server: str) -> None:
    with pytest.raises(ServerError):
        client(busy_server).get_retrain_job("job-1")
    assert AlwaysBusy.count == 5  # 1 + API_MAX_RETRIES


def test_ample_time_keeps_every_retry(busy_server: str) -> None:
    with invocation_deadline(FakeContext(remaining_ms=600_000)), pytest.raises(ServerError):
        client(busy_server).get_retrain_job("job-1")
    assert AlwaysBusy.count == 5


def test_no_retry_when_another_attempt_cannot_fit(busy_server: str) -> None:
    # 5 s left for the call: the first attempt runs with timeouts shortened to fit (1 s + 4 s); another
    # attempt of the same length cannot fit after it, so the answer is given back at once.
    context = FakeContext(remaining_ms=int((SAFETY_SECONDS + 5) * 1000))
    with invocation_deadline(context), pytest.raises(ServerError) as raised:
        client(busy_server).get_retrain_job("job-1")
    assert AlwaysBusy.count == 1
    assert raised.value.transient


def test_no_attempt_when_the_invocation_is_out_of_time(busy_server: str) -> None:
    context = FakeContext(remaining_ms=int((SAFETY_SECONDS + 0.5) * 1000))
    with invocation_deadline(context), pytest.raises(ConnectionFailed, match="not attempted") as raised:
        client(busy_server).get_retrain_job("job-1")
    assert AlwaysBusy.count == 0
    assert "demo-key" not in str(raised.value)


def test_timeouts_are_shortened_to_the_time_left() -> None:
    assert fit_timeouts(5.0, 30.0, endpoint="GET /x") == (5.0, 30.0)  # no deadline: as configured
    with invocation_deadline(FakeContext(remaining_ms=int((SAFETY_SECONDS + 12) * 1000))):
        connect, read = fit_timeouts(5.0, 30.0, endpoint="GET /x")
        assert connect == 5.0 and 6.0 < read <= 7.0
        left = remaining()
        assert left is not None and connect + read <= left + 0.01
    assert remaining() is None


def test_a_context_without_remaining_time_sets_no_deadline() -> None:
    with invocation_deadline(object()):
        assert remaining() is None
