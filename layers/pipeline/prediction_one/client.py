"""The Prediction One REST client: upload URL, presigned upload, retrain status, model switch, training
results, presigned downloads. Every failure is a typed ``PredictionOneError``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from .deadline import fit_timeouts
from .errors import PredictionOneError, UnexpectedResponse, error_from_response
from .http import build_api_session, build_transfer_session, exchange, log_exchange, transport_error
from .redaction import redact_url
from .settings import ClientSettings
from .status import JobState, classify_retrain, classify_training
from .streams import SizedReader

API_PREFIX = "/v1/external"
UPLOAD_URL_PATH = f"{API_PREFIX}/retrain_jobs/upload_url"
RETRAIN_JOB_PATH = f"{API_PREFIX}/retrain_jobs/{{retrain_job_id}}"
UPDATE_MODEL_PATH = f"{API_PREFIX}/retrain_jobs/{{retrain_job_id}}/update_model"
TRAINING_RESULTS_PATH = f"{API_PREFIX}/models/results"

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
USER_AGENT = "p1-retrain-prediction-one/0.1"
_ERROR_BODY_LIMIT = 64 * 1024


class Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class UploadTarget:
    """Answer of the upload-URL call. The URL is a secret (a signature): it is left out of ``repr``."""

    retrain_job_id: str
    upload_url: str = field(repr=False)


@dataclass(frozen=True)
class RetrainJob:
    """Answer of the retrain status call; ``state`` is the classified ``status`` (failures: a setting)."""

    retrain_job_id: str
    status: str
    model_id: int | None
    message: str | None
    download_url: str | None = field(repr=False)
    state: JobState


@dataclass(frozen=True)
class TrainingResult:
    """Answer of the training status call; ``state`` is the classified ``status``."""

    status: str
    created_datetime: str | None
    updated_datetime: str | None
    result_url: str | None = field(repr=False)
    state: JobState


def _identifier(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"{name} must not contain control characters")
    return value


def _encode(value: str, name: str) -> str:
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid UTF-8 text") from None


def _presigned(url: object, name: str) -> str:
    if not isinstance(url, str):
        raise ValueError(f"{name} must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {redact_url(url)!r}")
    return url


def _request_error(
    exc: requests.RequestException, endpoint: str, body_may_be_sent: bool = False
) -> Exception:
    """A request that could not even be built (bad URL or header) is a ValueError; anything else is a
    transport failure. Neither repeats the URL (it may be presigned)."""
    if isinstance(exc, ValueError):
        return ValueError(f"invalid request {endpoint}: {type(exc).__name__}")
    return transport_error(exc, endpoint=endpoint, body_may_be_sent=body_may_be_sent)


@dataclass(frozen=True)
class _Answer:
    """A success body and where it came from, with typed field access."""

    payload: dict[str, Any]
    endpoint: str
    http_status: int

    def problem(self, detail: str) -> UnexpectedResponse:
        return UnexpectedResponse(detail, http_status=self.http_status, endpoint=self.endpoint)

    def text(self, key: str) -> str:
        value = self.payload.get(key)
        if not isinstance(value, str) or not value:
            state = "missing" if value is None else "not a non-empty string"
            raise self.problem(f"field {key!r} of the answer is {state}")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.payload.get(key)
        return value if isinstance(value, str) and value else None


class PredictionOneClient:
    """One client per API key (one key per model). Thread-compatible, not shared across threads."""

    def __init__(
        self,
        api_key: str,
        settings: ClientSettings | None = None,
        session: requests.Session | None = None,
        transfer_session: requests.Session | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("api_key must be a non-empty string")
        api_key = api_key.strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in api_key):
            raise ValueError("api_key contains a line break or another control character")
        self._api_key = api_key
        self.settings = settings if settings is not None else ClientSettings()
        self._session = build_api_session(self.settings, session)
        self._transfer = transfer_session if transfer_session is not None else build_transfer_session()

    def __repr__(self) -> str:
        return f"PredictionOneClient(base_url={self.settings.base_url!r}, api_key='***')"

    def close(self) -> None:
        self._session.close()
        self._transfer.close()

    def __enter__(self) -> PredictionOneClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # API calls (retried by urllib3 for 429/5xx and connection errors)

    def _api(self, method: str, path: str, query: str = "") -> _Answer:
        url = f"{self.settings.base_url}{path}{'?' + query if query else ''}"
        endpoint = f"{method} {redact_url(path + ('?' + query if query else ''))}"
        headers = {"x-api-key": self._api_key, "Accept": "application/json", "User-Agent": USER_AGENT}
        timeout = fit_timeouts(self.settings.connect_timeout, self.settings.read_timeout, endpoint=endpoint)
        with exchange(method, url) as current:
            current.attempt_seconds = sum(timeout)
            try:
                response = self._session.request(
                    method, url, headers=headers, timeout=timeout, allow_redirects=False
                )
            except requests.RequestException as exc:
                log_exchange(current, None, type(exc).__name__)
                raise _request_error(exc, endpoint) from None
            log_exchange(current, response.status_code)
        if not 200 <= response.status_code < 300:
            raise error_from_response(
                response.status_code,
                response.content,
                endpoint=endpoint,
                headers=response.headers,
                secrets=(self._api_key,),
            )
        try:
            payload = json.loads(response.content) if response.content.strip() else {}
        except ValueError:
            raise UnexpectedResponse(
                "the success answer is not JSON", http_status=response.status_code, endpoint=endpoint
            ) from None
        if not isinstance(payload, dict):
            raise UnexpectedResponse(
                "the success answer is not a JSON object", http_status=response.status_code, endpoint=endpoint
            )
        return _Answer(payload, endpoint, response.status_code)

    def get_upload_url(self, filename: str) -> UploadTarget:
        """GET ``retrain_jobs/upload_url?filename=...`` (filename URL-encoded; any UTF-8 name)."""
        filename = _identifier(filename, "filename")
        answer = self._api("GET", UPLOAD_URL_PATH, f"filename={_encode(filename, 'filename')}")
        job_id = answer.text("retrain_job_id")
        upload_url = answer.text("upload_url")
        parts = urlsplit(upload_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise answer.problem("field 'upload_url' of the answer is not an absolute http(s) URL")
        return UploadTarget(retrain_job_id=job_id, upload_url=upload_url)

    def get_retrain_job(self, retrain_job_id: str) -> RetrainJob:
        """GET ``retrain_jobs/{retrain_job_id}``; ``state`` says running, finished or failed."""
        job_id = _identifier(retrain_job_id, "retrain_job_id")
        path = RETRAIN_JOB_PATH.format(retrain_job_id=_encode(job_id, "retrain_job_id"))
        answer = self._api("GET", path)
        status = answer.text("status")
        model_id = answer.payload.get("model_id")
        if isinstance(model_id, str) and model_id.strip().isdigit():
            model_id = int(model_id)
        if isinstance(model_id, bool) or not isinstance(model_id, int):
            model_id = None
        return RetrainJob(
            retrain_job_id=job_id,
            status=status,
            model_id=model_id,
            message=answer.optional_text("message"),
            download_url=answer.optional_text("download_url"),
            state=classify_retrain(status, self.settings.failure_statuses),
        )

    def update_model(self, retrain_job_id: str) -> None:
        """PUT ``retrain_jobs/{retrain_job_id}/update_model``: publish the retrained model (idempotent)."""
        job_id = _identifier(retrain_job_id, "retrain_job_id")
        self._api("PUT", UPDATE_MODEL_PATH.format(retrain_job_id=_encode(job_id, "retrain_job_id")))

    def get_training_result(self, external_process_id: str) -> TrainingResult:
        """GET ``models/results?external_process_id=...`` (the training-status endpoint)."""
        process_id = _identifier(external_process_id, "external_process_id")
        query = f"external_process_id={_encode(process_id, 'external_process_id')}"
        answer = self._api("GET", TRAINING_RESULTS_PATH, query)
        status = answer.text("status")
        return TrainingResult(
            status=status,
            created_datetime=answer.optional_text("created_datetime"),
            updated_datetime=answer.optional_text("updated_datetime"),
            result_url=answer.optional_text("result_url"),
            state=classify_training(status, self.settings.failure_statuses),
        )

    # Presigned transfers (never retried blindly: the callers decide; see docs/development.md)

    def upload(self, upload_url: str, body: BinaryIO | bytes, length: int) -> None:
        """PUT ``length`` bytes of ``body`` to the presigned ``upload_url`` with ``Content-Length`` (never
        chunked, no API key). ``body`` may be bytes or any object with ``read(n)``; it is streamed.

        Raises ``UploadRejected`` (409: the job already started), ``UrlExpired`` (403),
        ``RateLimited``/``ServerError`` (429/5xx), ``ConnectionFailed`` (never connected) or
        ``UploadAnswerLost`` (the answer was lost after the body may have been sent: check the job status).
        """
        url = _presigned(upload_url, "upload_url")
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be an integer >= 0, got {length!r}")
        if isinstance(body, bytes | bytearray | memoryview):
            if len(body) != length:
                raise ValueError(f"length is {length} but the body holds {len(body)} bytes")
            data: Any = bytes(body)
        else:
            data = SizedReader(body, length) if length else b""
        endpoint = f"PUT {redact_url(url)}"
        timeout = fit_timeouts(
            self.settings.connect_timeout, self.settings.upload_read_timeout, endpoint=endpoint
        )
        with exchange("PUT", url) as current:
            try:
                response = self._transfer.put(
                    url,
                    data=data,
                    headers={"User-Agent": USER_AGENT},
                    timeout=timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                log_exchange(current, None, type(exc).__name__)
                raise _request_error(exc, endpoint, body_may_be_sent=True) from None
            log_exchange(current, response.status_code)
        if not 200 <= response.status_code < 300:
            raise error_from_response(
                response.status_code,
                response.content[:_ERROR_BODY_LIMIT],
                endpoint=endpoint,
                headers=response.headers,
                presigned=True,
                upload=True,
            )

    def download(
        self,
        url: str,
        writer: Callable[[bytes], object] | Writable,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> int:
        """Stream a presigned GET into ``writer`` (a callable taking bytes, or an object with ``write``),
        byte for byte (no content decoding). Returns the number of bytes written. ``UrlExpired`` on 403,
        ``ConnectionFailed`` when the transfer breaks; errors raised by ``writer`` pass through unchanged."""
        url = _presigned(url, "url")
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        write = getattr(writer, "write", None) or writer
        if not callable(write):
            raise TypeError("writer must be callable or have a write(bytes) method")
        endpoint = f"GET {redact_url(url)}"
        timeout = fit_timeouts(self.settings.connect_timeout, self.settings.read_timeout, endpoint=endpoint)
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        written = 0
        with exchange("GET", url) as current:
            try:
                response = self._transfer.get(
                    url, headers=headers, timeout=timeout, stream=True, allow_redirects=False
                )
            except requests.RequestException as exc:
                log_exchange(current, None, type(exc).__name__)
                raise _request_error(exc, endpoint) from None
            with response:
                if not 200 <= response.status_code < 300:
                    log_exchange(current, response.status_code)
                    try:
                        body = response.raw.read(_ERROR_BODY_LIMIT, decode_content=False)
                    except (Urllib3Error, OSError):
                        body = b""
                    raise error_from_response(
                        response.status_code,
                        body,
                        endpoint=endpoint,
                        headers=response.headers,
                        presigned=True,
                    )
                chunks = response.raw.stream(chunk_size, decode_content=False)
                while True:
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        break
                    except (Urllib3Error, OSError, requests.RequestException) as exc:
                        log_exchange(current, None, type(exc).__name__)
                        raise transport_error(exc, endpoint=endpoint) from None
                    write(chunk)
                    written += len(chunk)
                log_exchange(current, response.status_code)
        return written


__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "PredictionOneClient",
    "PredictionOneError",
    "RetrainJob",
    "TrainingResult",
    "UploadTarget",
]
