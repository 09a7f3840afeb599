"""HTTP plumbing: sessions with urllib3 retries, one redacted log line per exchange, transport errors.

This is the one place that logs HTTP (logger ``prediction_one.http``): method, redacted URL, status,
elapsed milliseconds and attempt number; never headers, never a query string of a presigned URL.
urllib3's own debug lines are redacted too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import Retry

from .deadline import retry_fits
from .errors import ConnectionFailed, TransientError, UploadAnswerLost, parse_retry_after
from .redaction import redact_text, redact_url
from .settings import ClientSettings

__all__ = [
    "RETRY_STATUSES",
    "Exchange",
    "LoggingRetry",
    "build_api_session",
    "build_transfer_session",
    "exchange",
    "log_exchange",
    "logger",
    "redact_url",
    "transport_error",
]

logger = logging.getLogger("prediction_one.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_METHODS = frozenset({"GET", "PUT"})  # PUT update_model is idempotent (assumed, docs/development.md)
TRANSFER_BLOCK_SIZE = 256 * 1024


class RedactingFilter(logging.Filter):
    """Rewrite a record's message without query strings (urllib3 logs full request targets at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_urllib3_redaction() -> None:
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager", "urllib3.connection"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


_install_urllib3_redaction()


@dataclass
class Exchange:
    """One logical call (all its attempts), tracked so retries inside urllib3 can be logged and counted."""

    method: str
    url: str
    started: float = field(default_factory=time.monotonic)
    attempt_started: float = field(default_factory=time.monotonic)
    attempt: int = 1
    attempt_seconds: float = 0.0  # connect + read timeout of one attempt (the invocation deadline's unit)

    @property
    def attempt_ms(self) -> int:
        return round((time.monotonic() - self.attempt_started) * 1000)

    @property
    def total_ms(self) -> int:
        return round((time.monotonic() - self.started) * 1000)


_current: ContextVar[Exchange | None] = ContextVar("prediction_one_exchange", default=None)


@contextmanager
def exchange(method: str, url: str) -> Iterator[Exchange]:
    """Track one call; ``url`` is redacted here, so callers may pass the real one."""
    current = Exchange(method=method, url=redact_url(url))
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def log_exchange(current: Exchange, status: int | None, outcome: str | None = None) -> None:
    """The one line per finished call: method, redacted URL, status, elapsed ms, attempt."""
    ok = status is not None and 200 <= status < 300
    logger.log(
        logging.INFO if ok else logging.WARNING,
        "%s %s -> %s in %d ms (attempt %d)",
        current.method,
        current.url,
        status if status is not None else outcome or "no answer",
        current.attempt_ms,
        current.attempt,
        extra={
            "http_method": current.method,
            "http_url": current.url,
            "http_status": status,
            "http_outcome": outcome,
            "elapsed_ms": current.attempt_ms,
            "total_ms": current.total_ms,
            "attempt": current.attempt,
        },
    )


class LoggingRetry(Retry):
    """urllib3 ``Retry`` that logs each retried attempt, tolerates a malformed ``Retry-After``, and gives
    the answer back (no sleep) when the server asks to wait longer than ``retry_after_max`` seconds, so
    the caller can retry later instead of blocking."""

    def get_retry_after(self, response: Any) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> LoggingRetry:
        if response is not None and self.respect_retry_after_header:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.retry_after_max:
                raise MaxRetryError(_pool, url, ResponseError("Retry-After is longer than allowed"))  # type: ignore[arg-type]
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        current = _current.get()
        if current is not None and current.attempt_seconds:
            wait = new.get_retry_after(response) if response is not None else None
            wait = wait if wait is not None and self.respect_retry_after_header else new.get_backoff_time()
            if not retry_fits(wait, current.attempt_seconds):
                logger.warning(
                    "%s %s: no retry, the invocation's remaining time cannot hold another attempt",
                    current.method,
                    current.url,
                    extra={
                        "http_method": current.method,
                        "http_url": current.url,
                        "attempt": current.attempt,
                    },
                )
                reason = error if error is not None else ResponseError("no time left for another attempt")
                raise MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        if current is not None:
            outcome = str(response.status) if response is not None else type(error).__name__
            logger.warning(
                "%s %s -> %s in %d ms (attempt %d); retrying",
                current.method,
                current.url,
                outcome,
                current.attempt_ms,
                current.attempt,
                extra={
                    "http_method": current.method,
                    "http_url": current.url,
                    "http_status": response.status if response is not None else None,
                    "http_outcome": outcome,
                    "elapsed_ms": current.attempt_ms,
                    "attempt": current.attempt,
                },
            )
            current.attempt += 1
            current.attempt_started = time.monotonic()
        return new

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        current = _current.get()
        if current is not None:
            current.attempt_started = time.monotonic()


def api_retry(settings: ClientSettings) -> LoggingRetry:
    """Retries for the API calls: 429/5xx and connect/read errors, exponential backoff with jitter."""
    return LoggingRetry(
        total=settings.max_retries,
        connect=settings.max_retries,
        read=settings.max_retries,
        status=settings.max_retries,
        other=0,
        redirect=0,
        allowed_methods=RETRY_METHODS,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=settings.backoff_factor,
        backoff_max=settings.backoff_max,
        backoff_jitter=settings.backoff_jitter,
        retry_after_max=settings.backoff_max,  # type: ignore[arg-type]
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


def build_api_session(settings: ClientSettings, session: requests.Session | None = None) -> requests.Session:
    """A session whose adapter for ``settings.base_url`` retries (other prefixes are left as they are)."""
    session = session if session is not None else requests.Session()
    session.mount(settings.base_url + "/", HTTPAdapter(max_retries=api_retry(settings)))
    return session


class TransferAdapter(HTTPAdapter):
    """No retries (a body is never resent blindly) and larger socket blocks for big files."""

    def __init__(self) -> None:
        super().__init__(max_retries=Retry(total=0, read=False, redirect=0, raise_on_status=False))

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs.setdefault("blocksize", TRANSFER_BLOCK_SIZE)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def build_transfer_session() -> requests.Session:
    """A session for presigned URLs: no API key, no retries."""
    session = requests.Session()
    adapter = TransferAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (requests -> MaxRetryError -> ProtocolError -> OSError ...)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 16:
        item = todo.pop(0)
        if any(item is s for s in seen):
            continue
        seen.append(item)
        inner = [a for a in item.args if isinstance(a, BaseException)]
        reason = getattr(item, "reason", None)
        if isinstance(reason, BaseException):
            inner.append(reason)
        for linked in (item.__cause__, item.__context__):
            if linked is not None:
                inner.append(linked)
        todo.extend(inner)
    return seen


def _kind(chain: list[BaseException]) -> str:
    if any(isinstance(e, NewConnectionError | ConnectTimeoutError | requests.ConnectTimeout) for e in chain):
        return "could not connect"
    if any(isinstance(e, ReadTimeoutError | requests.ReadTimeout | TimeoutError) for e in chain):
        return "timed out waiting for the answer"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset"
    if any(isinstance(e, requests.exceptions.ChunkedEncodingError) for e in chain):
        return "the answer was cut off"
    if any(isinstance(e, ProtocolError) for e in chain):
        return "connection dropped"
    return "connection failed"


def transport_error(exc: BaseException, *, endpoint: str, body_may_be_sent: bool = False) -> TransientError:
    """Map a requests/urllib3 failure to ``ConnectionFailed``, or ``UploadAnswerLost`` when the request
    body may have reached the server (``body_may_be_sent``) and the connection had been established.
    The text names the kind of failure and the innermost exception type, never the URL."""
    chain = _chain(exc)
    kind = _kind(chain)
    innermost = type(chain[-1]).__name__
    detail = kind if innermost == type(exc).__name__ else f"{kind}: {innermost}"
    if body_may_be_sent and kind != "could not connect":
        return UploadAnswerLost(detail, endpoint=endpoint)
    return ConnectionFailed(detail, endpoint=endpoint)
