"""Retry policy and transport-error mapping, without a network."""

from __future__ import annotations

import logging

import pytest
import requests
from prediction_one.errors import ConnectionFailed, UploadAnswerLost
from prediction_one.http import RETRY_STATUSES, LoggingRetry, api_retry, exchange, transport_error
from prediction_one.settings import ClientSettings
from urllib3 import HTTPResponse
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError

SIGNED = "/_storage/upload/j?X-Amz-Signature=0123456789abcdef"


def response(status: int, retry_after: str | None = None) -> HTTPResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return HTTPResponse(body=b"", status=status, headers=headers, preload_content=False)


def test_api_retry_follows_the_settings():
    retry = api_retry(ClientSettings(max_retries=3, backoff_factor=0.25, backoff_max=7.0, backoff_jitter=0.5))
    assert (retry.total, retry.connect, retry.read, retry.status) == (3, 3, 3, 3)
    assert set(retry.status_forcelist) == set(RETRY_STATUSES) == {429, 500, 502, 503, 504}
    assert retry.allowed_methods == frozenset({"GET", "PUT"})
    assert (retry.backoff_factor, retry.backoff_max, retry.backoff_jitter) == (0.25, 7.0, 0.5)
    assert retry.raise_on_status is False and retry.respect_retry_after_header is True
    assert retry.retry_after_max == 7.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_client_errors_are_never_retried(status):
    assert not api_retry(ClientSettings()).is_retry("GET", status, has_retry_after=True)


@pytest.mark.parametrize("status", sorted(RETRY_STATUSES))
def test_transient_statuses_are_retried_for_get_and_put(status):
    retry = api_retry(ClientSettings())
    assert retry.is_retry("GET", status) and retry.is_retry("PUT", status)
    assert not retry.is_retry("POST", status)


def test_backoff_is_exponential_with_jitter_and_capped():
    retry = api_retry(ClientSettings(backoff_factor=1.0, backoff_max=5.0, backoff_jitter=0.0, max_retries=10))
    waits = []
    for _ in range(5):
        retry = retry.increment("GET", "/x", response=response(503))
        waits.append(retry.get_backoff_time())
    assert waits == [0.0, 2.0, 4.0, 5.0, 5.0]
    jittered = api_retry(ClientSettings(backoff_factor=1.0, backoff_jitter=1.0))
    jittered = jittered.increment("GET", "/x", response=response(503)).increment(
        "GET", "/x", response=response(503)
    )
    assert 2.0 <= jittered.get_backoff_time() <= 3.0


def test_a_retry_after_longer_than_allowed_gives_the_answer_back():
    retry = api_retry(ClientSettings(backoff_max=10.0))
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/x", response=response(429, "3600"))
    within = retry.increment("GET", "/x", response=response(429, "2"))  # sleep() waits 2 s, then a retry
    assert isinstance(within, LoggingRetry) and within.get_retry_after(response(429, "2")) == 2.0


def test_a_malformed_retry_after_is_ignored():
    retry = api_retry(ClientSettings())
    assert retry.get_retry_after(response(503, "tomorrow-ish")) is None
    assert isinstance(retry.increment("GET", "/x", response=response(503, "tomorrow-ish")), LoggingRetry)


def test_each_retried_attempt_is_logged_redacted(caplog):
    caplog.set_level(logging.INFO, logger="prediction_one.http")
    retry = api_retry(ClientSettings(max_retries=5))
    with exchange("GET", "http://h" + SIGNED) as current:
        retry = retry.increment("GET", SIGNED, response=response(502))
        retry = retry.increment("GET", SIGNED, error=ProtocolError("aborted", ConnectionResetError()))
        assert current.attempt == 3
    assert [r.attempt for r in caplog.records] == [1, 2]
    assert [r.http_outcome for r in caplog.records] == ["502", "ProtocolError"]
    assert all("0123456789abcdef" not in r.getMessage() for r in caplog.records)
    assert all(r.http_url == "http://h/_storage/upload/j" for r in caplog.records)


def _connection_error(reason: BaseException) -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, SIGNED, reason))  # type: ignore[arg-type]


def test_transport_errors_name_the_failure_without_the_url():
    never = _connection_error(NewConnectionError(None, "Failed to establish a new connection"))  # type: ignore[arg-type]
    reset = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))
    timeout = requests.ReadTimeout(ReadTimeoutError(None, SIGNED, "Read timed out."))  # type: ignore[arg-type]
    cut = requests.exceptions.ChunkedEncodingError(ProtocolError("Response ended prematurely"))

    for exc, kind in [
        (never, "could not connect"),
        (reset, "connection reset"),
        (timeout, "timed out"),
        (cut, "cut off"),
        (requests.ConnectTimeout("x"), "could not connect"),
    ]:
        mapped = transport_error(exc, endpoint="GET /x")
        assert type(mapped) is ConnectionFailed, exc
        assert kind in mapped.describe()
        assert "0123456789abcdef" not in str(mapped)


def test_a_lost_upload_answer_is_not_a_plain_connection_failure():
    reset = requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))
    assert type(transport_error(reset, endpoint="PUT /u", body_may_be_sent=True)) is UploadAnswerLost
    timeout = requests.ReadTimeout("read timed out")
    assert type(transport_error(timeout, endpoint="PUT /u", body_may_be_sent=True)) is UploadAnswerLost
    refused = _connection_error(NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    assert type(transport_error(refused, endpoint="PUT /u", body_may_be_sent=True)) is ConnectionFailed
