"""The client against the emulator's injected faults: what is retried, how often, and what is raised.

Attempts are counted from the emulator's request log, never from clocks.
"""

from __future__ import annotations

import io
import logging
import threading
import time

import pytest
from prediction_one import (
    ConnectionFailed,
    JobState,
    PredictionOneClient,
    RateLimited,
    ServerError,
    UploadAnswerLost,
    UploadRejected,
    UrlExpired,
)

from tests.integration.client_support import KEY, RETRIES, fast_settings
from tests.testdata import table


def csv_bytes(rows: int = 120) -> bytes:
    return table(rows, header="abc", cell=lambda r, c: (r, r * 2, f"x{r}")[c])


@pytest.fixture
def client(emulator):
    with PredictionOneClient(KEY, fast_settings(emulator.base_url)) as api:
        yield api


def log_of(emulator, endpoint: str) -> list[tuple[int | None, str | None]]:
    return [(r["status"], r["fault"]) for r in emulator.admin.requests_log() if r["endpoint"] == endpoint]


def wait_for_log(
    emulator, endpoint: str, count: int, timeout: float = 10.0
) -> list[tuple[int | None, str | None]]:
    """The emulator writes a log entry after its side of a request ends (a reset or a slow answer may end
    after the client gave up): wait, bounded, until ``count`` entries are there."""
    deadline = time.monotonic() + timeout
    entries = log_of(emulator, endpoint)
    while len(entries) < count and time.monotonic() < deadline:
        threading.Event().wait(0.02)
        entries = log_of(emulator, endpoint)
    return entries


def assert_log(emulator, endpoint: str, expected: list[tuple[int | None, str | None]]) -> None:
    assert wait_for_log(emulator, endpoint, len(expected)) == expected


def finished_job(client, emulator) -> str:
    data = csv_bytes()
    target = client.get_upload_url("d.csv")
    client.upload(target.upload_url, data, len(data))
    emulator.admin.advance_clock(1.0)
    emulator.admin.wait_job(target.retrain_job_id, "job_finished", timeout=30)
    return target.retrain_job_id


class ClearFaultsOnFirstRetry(logging.Handler):
    """Clears the emulator's faults from inside the client's retry loop, right after the first failed
    attempt is logged and before the next one is sent: a deterministic 'fails once, then recovers'."""

    def __init__(self, emulator) -> None:
        super().__init__(logging.WARNING)
        self.emulator = emulator
        self.cleared = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.cleared and record.getMessage().endswith("; retrying"):
            self.emulator.admin.clear_faults()
            self.cleared = True


@pytest.fixture
def recover_after_one_failure(emulator):
    handler = ClearFaultsOnFirstRetry(emulator)
    target = logging.getLogger("prediction_one.http")
    previous = target.level
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    yield handler
    target.removeHandler(handler)
    target.setLevel(previous)


# API calls: transient answers are retried by urllib3, then mapped to a typed error.


@pytest.mark.parametrize(
    ("kind", "status", "error", "words"),
    [
        ("500", 500, ServerError, "Internal server error."),
        ("502", 502, ServerError, "502 Bad Gateway"),
        ("503", 503, ServerError, "HTTP 503"),
    ],
)
def test_server_errors_are_retried_then_raised(client, emulator, kind, status, error, words):
    job_id = client.get_upload_url("d.csv").retrain_job_id
    emulator.admin.set_faults(1.0, kinds=[kind], endpoints=["retrain_status"])
    with pytest.raises(error) as caught:
        client.get_retrain_job(job_id)
    assert words in str(caught.value)
    assert caught.value.http_status == status and caught.value.transient
    assert_log(emulator, "retrain_status", [(status, kind)] * (1 + RETRIES))


@pytest.mark.parametrize(
    ("kind", "endpoint"), [("503", "upload_url"), ("500", "update_model"), ("502", "retrain_status")]
)
def test_a_transient_failure_then_success_is_invisible(
    client, emulator, recover_after_one_failure, kind, endpoint
):
    job_id = finished_job(client, emulator) if endpoint != "upload_url" else None
    emulator.admin.set_faults(1.0, kinds=[kind], endpoints=[endpoint])
    if endpoint == "upload_url":
        assert client.get_upload_url("again.csv").retrain_job_id
    elif endpoint == "update_model":
        client.update_model(job_id)  # PUT update_model is idempotent (assumed), so it is retried too
        assert len(emulator.admin.switches()) == 1
    else:
        assert client.get_retrain_job(job_id).state is JobState.FINISHED
    assert recover_after_one_failure.cleared
    assert_log(emulator, endpoint, [(int(kind), kind), (200, None)])


def test_rate_limit_honours_retry_after_then_raises_rate_limited(client, emulator):
    emulator.admin.set_faults(1.0, kinds=["429"], endpoints=["upload_url"])
    with (
        PredictionOneClient(KEY, fast_settings(emulator.base_url, max_retries=1)) as one_retry,
        pytest.raises(RateLimited) as caught,
    ):
        one_retry.get_upload_url("d.csv")
    assert caught.value.retry_after == 1.0  # the emulator's Retry-After
    assert_log(emulator, "upload_url", [(429, "429")] * 2)


def test_a_retry_after_beyond_the_cap_is_left_to_the_caller(emulator):
    emulator.admin.set_faults(1.0, kinds=["429"], endpoints=["upload_url"])
    with (
        PredictionOneClient(KEY, fast_settings(emulator.base_url, backoff_max=0.5)) as capped,
        pytest.raises(RateLimited) as caught,
    ):
        capped.get_upload_url("d.csv")
    assert caught.value.retry_after == 1.0
    assert_log(emulator, "upload_url", [(429, "429")])  # no in-process wait longer than allowed


def test_reset_connections_are_retried_then_connection_failed(client, emulator, caplog):
    caplog.set_level(logging.INFO, logger="prediction_one.http")
    process_id = emulator.admin.create_training("demo")
    emulator.admin.set_faults(1.0, kinds=["reset"], endpoints=["training_status"])
    with pytest.raises(ConnectionFailed) as caught:
        client.get_training_result(process_id)
    assert "connection reset" in caught.value.describe()
    assert [r.attempt for r in caplog.records if r.name == "prediction_one.http"] == [1, 2, 3]
    assert_log(emulator, "training_status", [(None, "reset")] * (1 + RETRIES))


def test_a_slow_answer_beyond_the_read_timeout_is_retried_then_connection_failed(client, emulator, caplog):
    caplog.set_level(logging.INFO, logger="prediction_one.http")
    job_id = client.get_upload_url("d.csv").retrain_job_id
    emulator.admin.set_faults(1.0, kinds=["slow"], endpoints=["retrain_status"], slow_seconds=0.5)
    with (
        PredictionOneClient(KEY, fast_settings(emulator.base_url, read_timeout=0.1)) as impatient,
        pytest.raises(ConnectionFailed) as caught,
    ):
        impatient.get_retrain_job(job_id)
    assert "timed out" in caught.value.describe()
    status_calls = [r for r in caplog.records if r.name == "prediction_one.http" and job_id in r.http_url]
    assert [r.attempt for r in status_calls] == [1, 2, 3]
    # Counted when the fault is drawn, before the delay (the request log misses answers nobody read).
    assert emulator.admin.fault_counts() == {"slow": 1 + RETRIES}


def test_a_slow_answer_within_the_read_timeout_succeeds(client, emulator):
    job_id = client.get_upload_url("d.csv").retrain_job_id
    emulator.admin.set_faults(1.0, kinds=["slow"], endpoints=["retrain_status"], slow_seconds=0.1)
    assert client.get_retrain_job(job_id).status == "job_created"
    assert_log(emulator, "retrain_status", [(200, "slow")])


# Presigned transfers: never retried blindly.


@pytest.mark.parametrize(
    ("kind", "error"), [("503", ServerError), ("500", ServerError), ("429", RateLimited)]
)
def test_upload_failures_are_not_retried(client, emulator, kind, error):
    target = client.get_upload_url("d.csv")
    emulator.admin.set_faults(1.0, kinds=[kind], endpoints=["upload"])
    data = csv_bytes()
    with pytest.raises(error):
        client.upload(target.upload_url, io.BytesIO(data), len(data))
    assert_log(emulator, "upload", [(int(kind), kind)])
    assert emulator.admin.uploads() == []


def test_a_lost_upload_answer_is_reported_and_the_job_tells_the_truth(client, emulator):
    target = client.get_upload_url("d.csv")
    emulator.admin.set_faults(1.0, kinds=["lost_answer"], endpoints=["upload"])
    data = csv_bytes()
    with pytest.raises(UploadAnswerLost) as caught:
        client.upload(target.upload_url, io.BytesIO(data), len(data))
    assert caught.value.transient and "check the job status" in caught.value.describe()
    emulator.admin.clear_faults()
    assert client.get_retrain_job(target.retrain_job_id).status != "job_created"  # it did arrive
    with pytest.raises(UploadRejected):
        client.upload(target.upload_url, io.BytesIO(data), len(data))
    assert len(emulator.admin.uploads()) == 1


def test_a_reset_upload_is_an_answer_lost_and_nothing_arrived(client, emulator):
    target = client.get_upload_url("d.csv")
    emulator.admin.set_faults(1.0, kinds=["reset"], endpoints=["upload"])
    data = csv_bytes()
    with pytest.raises(UploadAnswerLost):
        client.upload(target.upload_url, data, len(data))
    emulator.admin.clear_faults()
    assert client.get_retrain_job(target.retrain_job_id).status == "job_created"
    client.upload(target.upload_url, data, len(data))  # safe to send again: the job says nothing arrived
    assert len(emulator.admin.uploads()) == 1


def test_expired_upload_url(client, emulator):
    target = client.get_upload_url("d.csv")
    emulator.admin.advance_clock(3600)
    with pytest.raises(UrlExpired) as caught:
        client.upload(target.upload_url, b"a,b\n1,2\n", 8)
    assert (caught.value.error, caught.value.api_message) == ("AccessDenied", "Request has expired")
    assert "X-Amz" not in str(caught.value)


def test_expired_download_url_then_a_fresh_one_works(client, emulator):
    job_id = finished_job(client, emulator)
    stale = client.get_retrain_job(job_id).download_url
    emulator.admin.advance_clock(3600)
    with pytest.raises(UrlExpired):
        client.download(stale, io.BytesIO())
    fresh = client.get_retrain_job(job_id).download_url
    sink = io.BytesIO()
    client.download(fresh, sink)
    assert sink.getvalue() == emulator.admin.result_bytes(job_id)
    assert [s for s, _ in wait_for_log(emulator, "download", 2)] == [403, 200]


@pytest.mark.parametrize(
    ("kind", "error"), [("expired_url", UrlExpired), ("503", ServerError), ("reset", ConnectionFailed)]
)
def test_download_faults_are_typed_and_not_retried(client, emulator, kind, error):
    job_id = finished_job(client, emulator)
    url = client.get_retrain_job(job_id).download_url
    emulator.admin.set_faults(1.0, kinds=[kind], endpoints=["download"])
    with pytest.raises(error):
        client.download(url, io.BytesIO())
    assert [f for _, f in wait_for_log(emulator, "download", 1)] == [kind]


# Streaming and secrecy.


class CsvSource:
    """A large CSV produced on demand; records the largest read so a whole-body read would show."""

    def __init__(self, rows: int) -> None:
        self.lines = (f"{r},{r % 97},{'x' * 40}\n".encode() for r in range(rows))
        self.pending = b"a,b,c\n"
        self.largest_read = 0
        self.total_read = 0

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size > 0, "the client asked for the whole body"
        self.largest_read = max(self.largest_read, size)
        while len(self.pending) < size:
            line = next(self.lines, None)
            if line is None:
                break
            self.pending += line
        chunk, self.pending = self.pending[:size], self.pending[size:]
        self.total_read += len(chunk)
        return chunk


def test_streaming_upload_sends_content_length_and_reads_in_blocks(client, emulator):
    rows = 60_000
    length = len(b"a,b,c\n") + sum(len(f"{r},{r % 97},{'x' * 40}\n") for r in range(rows))
    source = CsvSource(rows)
    target = client.get_upload_url("big.csv")
    client.upload(target.upload_url, source, length)
    [upload] = emulator.admin.uploads()  # the emulator refuses chunked bodies (411), so this had a length
    assert upload["size"] == length == source.total_read
    assert length > 2 * 1024 * 1024
    assert 0 < source.largest_read <= 256 * 1024 < length


def test_logs_show_calls_but_never_the_key_or_a_signature(emulator, caplog, recover_after_one_failure):
    caplog.set_level(logging.DEBUG)
    with PredictionOneClient(KEY, fast_settings(emulator.base_url)) as api:
        target = api.get_upload_url("d.csv")
        data = csv_bytes()
        emulator.admin.set_faults(1.0, kinds=["503"], endpoints=["retrain_status"])
        api.upload(target.upload_url, data, len(data))
        emulator.admin.advance_clock(1.0)
        emulator.admin.wait_job(target.retrain_job_id, "job_finished", timeout=30)
        job = api.get_retrain_job(target.retrain_job_id)  # fails once, then recovers
        api.download(job.download_url, io.BytesIO())
        api.update_model(target.retrain_job_id)
        with pytest.raises(UploadRejected) as rejected:
            api.upload(target.upload_url, data, len(data))
    signature = target.upload_url.split("X-Amz-Signature=")[1].split("&")[0]
    client_side = [r for r in caplog.records if r.name.startswith(("prediction_one", "urllib3", "requests"))]
    http_lines = [r for r in client_side if r.name == "prediction_one.http"]
    assert len(http_lines) >= 7
    assert {r.attempt for r in http_lines} == {1, 2}
    assert all(isinstance(r.elapsed_ms, int) for r in http_lines)
    text = "\n".join(r.getMessage() for r in client_side) + "\n" + caplog.text + str(rejected.value)
    for secret in (KEY, signature, "X-Amz-Signature", "X-Amz-Credential"):
        assert secret not in text
    assert "/_storage/upload/" in text and "filename=d.csv" in text
