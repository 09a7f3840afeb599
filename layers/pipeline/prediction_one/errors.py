"""Typed errors: one class per documented error row, plus what gateways, networks and presigned URLs do.

A class name is the error name the state machine sees, so names are stable. ``TransientError`` subclasses
are worth retrying later; ``PermanentError`` subclasses are not. Messages never hold an API key or a query
string: the API's own message is kept (masked), presigned URLs are reduced to their path.
"""

from __future__ import annotations

import email.utils
import html
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import ClassVar

from .redaction import redact_text

BAD_REQUEST_CODE = 4001000204
BAD_REQUEST_ERROR = "PREDA_EXTERNAL_BAD_REQUEST"
INTERNAL_SERVER_ERROR_CODE = 5001000201
INTERNAL_SERVER_ERROR = "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR"

_MAX_DETAIL = 200


class PredictionOneError(Exception):
    """Base of every client error. ``describe()`` says what happened in plain words."""

    meaning: ClassVar[str] = "the Prediction One API call failed"
    transient: ClassVar[bool] = False
    documented_code: ClassVar[int | None] = None
    documented_message: ClassVar[str | None] = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: int | None = None,
        error: str | None = None,
        api_message: str | None = None,
        http_status: int | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.detail = detail
        self.code = code
        self.error = error
        self.api_message = api_message
        self.http_status = http_status
        self.endpoint = endpoint
        super().__init__(self._text())

    def describe(self) -> str:
        """E.g. ``invalid_api_key. (4001000204 PREDA_EXTERNAL_BAD_REQUEST): the API key does not exist``."""
        extras = [self.detail] if self.detail else []
        if self.code is not None and self.api_message:
            label = f"{self.code} {self.error}" if self.error else str(self.code)
            text = f"{self.api_message} ({label}): {self.meaning}"
        else:
            if self.api_message or self.error:
                extras.insert(0, ": ".join(p for p in (self.error, self.api_message) if p))
            text = f"HTTP {self.http_status}: {self.meaning}" if self.http_status else self.meaning
        return f"{text} ({'; '.join(extras)})" if extras else text

    def _text(self) -> str:
        return f"{self.describe()} [{self.endpoint}]" if self.endpoint else self.describe()

    def __str__(self) -> str:
        return self._text()


class PermanentError(PredictionOneError):
    """Asking again will not help: the key, the model, the job or the request is wrong."""


class TransientError(PredictionOneError):
    """Asking again later may help."""

    transient: ClassVar[bool] = True


# The rows the API reference pages document. The message text is matched exactly, trailing dot included.


class CredentialError(PermanentError):
    """The API key was refused (wrong, inactive or unknown)."""


class ApiKeyInvalid(CredentialError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "invalid_api_key."
    meaning = "the API key does not exist"


class CredentialInactive(CredentialError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "Inactive_credential."
    meaning = "the API key is incorrect (the credential is inactive)"


class CredentialNotFound(CredentialError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "Not_found_credential."
    meaning = "the API key is incorrect (the credential was not found)"


class UserDeleted(PermanentError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "This user may be deleted."
    meaning = "the user information may have been deleted"


class ModelDeleted(PermanentError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "This model may be deleted."
    meaning = "the model may have been deleted"


class JobDeleted(PermanentError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "This job may be deleted."
    meaning = "the job may have been deleted"


class RetrainJobNotFound(PermanentError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "Not found retrain job."
    meaning = "the retrain_job_id is incorrect"


class ClassifierNotFound(PermanentError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "Not found classifier."
    meaning = "the model API may have been deleted"


class RetrainJobNotFinished(PermanentError):
    documented_code = BAD_REQUEST_CODE
    documented_message = "Retrain job is not finished."
    meaning = "retraining is not complete"


class ConfigurationFileNotFound(TransientError):
    documented_code = INTERNAL_SERVER_ERROR_CODE
    documented_message = "Not found configuration_file."
    meaning = "the configuration file may have been deleted"


class BadRequest(PermanentError):
    meaning = "the API refused the request with a message this client does not know"


# What else can come back.


class AccessDenied(PermanentError):
    meaning = "access was denied before the API answered (a gateway refused the key or the request)"


class UploadRejected(PermanentError):
    meaning = "the upload URL refused the file: the job has already started (a repeated upload)"


class UrlExpired(PermanentError):
    meaning = "the presigned URL has expired or was refused; ask the API for a fresh one"


class UnexpectedResponse(PermanentError):
    meaning = "the API answered with something this client does not understand"


class ServerError(TransientError):
    meaning = "the server or a gateway in front of it failed"


class RateLimited(TransientError):
    meaning = "too many requests: the API asked to slow down"

    def __init__(
        self, detail: str | None = None, *, retry_after: float | None = None, **fields: object
    ) -> None:
        self.retry_after = retry_after
        if retry_after is not None:
            wait = f"retry after {retry_after:g} s"
            detail = f"{detail}; {wait}" if detail else wait
        super().__init__(detail, **fields)  # type: ignore[arg-type]


class ConnectionFailed(TransientError):
    meaning = "the connection failed or timed out before a complete answer arrived"


class UploadAnswerLost(TransientError):
    meaning = (
        "the upload's answer was lost after the file may have been sent; "
        "check the job status before calling the upload failed"
    )


DOCUMENTED_ERRORS: tuple[type[PredictionOneError], ...] = (
    ApiKeyInvalid,
    CredentialInactive,
    CredentialNotFound,
    UserDeleted,
    ModelDeleted,
    JobDeleted,
    RetrainJobNotFound,
    ClassifierNotFound,
    RetrainJobNotFinished,
    ConfigurationFileNotFound,
)
"""One class per documented row, in the order docs/development.md lists them."""

_ROWS: dict[tuple[int, str], type[PredictionOneError]] = {
    (cls.documented_code, cls.documented_message): cls  # type: ignore[misc]
    for cls in DOCUMENTED_ERRORS
}


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date); None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _as_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _json_fields(text: str) -> dict[str, object] | None:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    for key in ("Error", "error"):  # some gateways nest the error object
        inner = payload.get(key)
        if isinstance(inner, dict) and "code" not in payload:
            payload = {**inner, **{k: v for k, v in payload.items() if k != key}}
    return payload


def _xml_field(text: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>([^<]{{0,500}})</{tag}>", text)
    return html.unescape(match.group(1)).strip() if match else None


def _excerpt(text: str, secrets: Iterable[str]) -> str:
    text = text[:4096]
    title = re.search(r"(?is)<title[^>]*>(.*?)</title>", text)
    text = title.group(1) if title else re.sub(r"(?s)<[^>]*>", " ", text)
    text = " ".join(html.unescape(text).split())
    if not text:
        return "empty body"
    text = redact_text(text, secrets)
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _clean(value: object, secrets: Iterable[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return redact_text(value.strip()[:1000], secrets)[:_MAX_DETAIL]


def error_from_response(
    status: int,
    body: bytes | str | None,
    *,
    endpoint: str,
    headers: Mapping[str, str] | None = None,
    presigned: bool = False,
    upload: bool = False,
    secrets: Iterable[str] = (),
) -> PredictionOneError:
    """Map a non-2xx answer to its typed error. Never raises on odd bodies (HTML, empty, non-JSON).

    ``presigned``: the request went to a presigned URL (S3-like, XML errors, 403 means expired).
    ``upload``: the request was the presigned upload PUT (409 means the job already started).
    ``secrets``: strings masked wherever the server's text is repeated (the API key).
    """
    secrets = tuple(s for s in secrets if s)
    text = body[:65536].decode("utf-8", errors="replace") if isinstance(body, bytes) else (body or "")[:65536]
    fields: dict[str, object] = {"http_status": status, "endpoint": endpoint}
    detail: str | None = None

    if presigned:
        fields["error"] = _clean(_xml_field(text, "Code"), secrets)
        fields["api_message"] = _clean(_xml_field(text, "Message"), secrets)
        if not fields["error"] and not fields["api_message"]:
            detail = _excerpt(text, secrets)
    else:
        payload = _json_fields(text)
        if payload is not None:
            code = _as_code(payload.get("code"))
            message = payload.get("message")
            fields.update(code=code, error=_clean(payload.get("error"), secrets))
            fields["api_message"] = _clean(message, secrets)
            if code == BAD_REQUEST_CODE:
                cls = _ROWS.get((code, message), BadRequest) if isinstance(message, str) else BadRequest
                return cls(**fields)  # type: ignore[arg-type]
            if code == INTERNAL_SERVER_ERROR_CODE:
                cls = _ROWS.get((code, message), ServerError) if isinstance(message, str) else ServerError
                return cls(**fields)  # type: ignore[arg-type]
            if not fields["api_message"] and not fields["error"]:
                detail = _excerpt(text, secrets)
        else:
            detail = _excerpt(text, secrets)

    if status == 429:
        retry_after = parse_retry_after((headers or {}).get("Retry-After"))
        return RateLimited(detail, retry_after=retry_after, **fields)
    if status >= 500:
        return ServerError(detail, **fields)  # type: ignore[arg-type]
    if status == 403 and presigned:
        return UrlExpired(**fields)  # type: ignore[arg-type]
    if status == 409 and upload:
        return UploadRejected(**fields)  # type: ignore[arg-type]
    if status in (401, 403):
        return AccessDenied(detail, **fields)  # type: ignore[arg-type]
    return UnexpectedResponse(detail, **fields)  # type: ignore[arg-type]
