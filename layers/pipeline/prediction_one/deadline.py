"""The invocation's time budget: no Prediction One request outlives the Lambda invocation that makes it.

Invariant (docs/architecture.md, "Time budget"): inside ``invocation_deadline(context)`` a request is sent
only with timeouts that fit the invocation's remaining time (``context.get_remaining_time_in_millis()``
less ``SAFETY_SECONDS``), and a retry inside one call (urllib3, ``API_MAX_RETRIES``) is made only when its
backoff or ``Retry-After`` wait plus one whole attempt (connect + read timeout) still fit. Otherwise the
call ends at once with its transient error (``ServerError``, ``RateLimited``, ``ConnectionFailed``), which
the state machine retries in a fresh invocation. So a function's ``Timeout`` bounds the call, whatever
``API_MAX_RETRIES``, ``API_CONNECT_TIMEOUT``, ``API_READ_TIMEOUT`` and the server's ``Retry-After`` are,
and Lambda never kills a step in the middle of an API call it could have reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .errors import ConnectionFailed

__all__ = ["MIN_ATTEMPT_SECONDS", "SAFETY_SECONDS", "fit_timeouts", "invocation_deadline", "remaining"]

SAFETY_SECONDS = 3.0
"""Kept back for the step itself: logging, metrics, returning the error to Step Functions."""

MIN_ATTEMPT_SECONDS = 1.0
"""An attempt with less time than this is not begun."""

_deadline: ContextVar[float | None] = ContextVar("prediction_one_deadline", default=None)


@contextmanager
def invocation_deadline(context: Any) -> Iterator[None]:
    """Bound every Prediction One call made inside by the Lambda invocation's remaining time.

    ``context`` is the Lambda context; one without ``get_remaining_time_in_millis`` sets no bound."""
    get_remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(get_remaining):
        yield
        return
    token = _deadline.set(time.monotonic() + float(get_remaining()) / 1000.0 - SAFETY_SECONDS)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds the current invocation still has for API calls, or None outside ``invocation_deadline``."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def fit_timeouts(connect: float, read: float, *, endpoint: str) -> tuple[float, float]:
    """The (connect, read) timeouts of the next request: as configured, or shortened to the time left;
    ``ConnectionFailed`` (transient) when not even ``MIN_ATTEMPT_SECONDS`` is left."""
    left = remaining()
    if left is None:
        return connect, read
    if left < MIN_ATTEMPT_SECONDS:
        raise ConnectionFailed(
            f"not attempted: the invocation has {max(left, 0.0):.1f} s left for the call", endpoint=endpoint
        )
    fitted_connect = min(connect, left / 2)
    return fitted_connect, min(read, left - fitted_connect)


def retry_fits(wait: float, attempt_seconds: float) -> bool:
    """Whether waiting ``wait`` seconds and then one attempt of ``attempt_seconds`` fit in the time left."""
    left = remaining()
    return left is None or wait + attempt_seconds <= left
