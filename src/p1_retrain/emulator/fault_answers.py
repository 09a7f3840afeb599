"""What an injected fault answers: the gateway-like and S3-like error bodies of each fault kind.

``faults`` decides whether a request fails and with which kind; this module builds the answer of the kinds
that answer before the request is processed (``500``, ``502``, ``503``, ``429``, ``expired_url``). ``reset``,
``slow`` and ``lost_answer`` send no answer of their own: the handler resets the connection or waits.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from p1_retrain.emulator import errors
from p1_retrain.emulator.exchange import JSON, XML
from p1_retrain.emulator.presign import Signer

BAD_GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)
ANSWERING_KINDS = ("500", "502", "503", "429", "expired_url")


@dataclass(frozen=True)
class FaultAnswer:
    """One HTTP answer: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def _request_id() -> tuple[tuple[str, str], ...]:
    return (("x-amzn-RequestId", str(uuid.uuid4())),)


def _api_json(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> FaultAnswer:
    return FaultAnswer(status, json.dumps(payload).encode(), JSON, _request_id() + headers)


def _storage(error: errors.StorageError, headers: tuple[tuple[str, str], ...] = ()) -> FaultAnswer:
    return FaultAnswer(error.status, error.body(), XML, headers)


def fault_answer(kind: str, storage: bool, query: dict[str, str], now: float) -> FaultAnswer:
    """The answer of fault ``kind`` (one of ``ANSWERING_KINDS``) on a storage route or an API route."""
    if kind == "500":
        if storage:
            return _storage(
                errors.StorageError(
                    500, "InternalError", "We encountered an internal error. Please try again."
                )
            )
        error = errors.INTERNAL_FAULT
        return FaultAnswer(error.status, error.body(), JSON, _request_id())
    if kind == "502":
        return FaultAnswer(502, BAD_GATEWAY_HTML, "text/html")
    if kind == "503":
        if storage:
            return _storage(errors.StorageError(503, "SlowDown", "Please reduce your request rate."))
        return _api_json(503, {"message": "Service Unavailable"})
    if kind == "429":
        retry = (("Retry-After", "1"),)
        if storage:
            return _storage(
                errors.StorageError(429, "TooManyRequests", "Please reduce your request rate."), retry
            )
        return _api_json(429, {"message": "Too Many Requests"}, retry)
    if kind == "expired_url":
        return _storage(Signer.expired(query, now))
    raise ValueError(f"fault kind {kind!r} sends no answer of its own")
