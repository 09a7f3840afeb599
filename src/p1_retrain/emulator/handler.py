"""HTTP request handling: routing, the API and storage routes with fault injection, admin dispatch."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import struct
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from p1_retrain.emulator import errors
from p1_retrain.emulator.admin_routes import ADMIN
from p1_retrain.emulator.presign import Signer
from p1_retrain.emulator.receive import BodyEnded, Progress, StoreFailed, receive_to_file
from p1_retrain.emulator.state import Conflict, NotFound

if TYPE_CHECKING:
    from p1_retrain.emulator.server import EmulatorHTTPServer

LOG = logging.getLogger("p1_retrain.emulator")
CHUNK = 1024 * 1024
JSON = "application/json"
XML = "application/xml"
ADMIN_BODY_LIMIT = 1024 * 1024
BAD_GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)
_HOST = re.compile(r"[A-Za-z0-9._-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_QUERY = re.compile(r"\?\S*")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

# (path pattern, allowed methods, endpoint name); the first pattern that matches decides.
PUBLIC_ROUTES: tuple[tuple[re.Pattern[str], tuple[str, ...], str], ...] = (
    (re.compile(r"/v1/external/retrain_jobs/upload_url"), ("GET",), "upload_url"),
    (re.compile(r"/v1/external/retrain_jobs/(?P<id>[^/]+)/update_model"), ("PUT",), "update_model"),
    (re.compile(r"/v1/external/retrain_jobs/(?P<id>[^/]+)"), ("GET",), "retrain_status"),
    (re.compile(r"/v1/external/models/results"), ("GET",), "training_status"),
    (re.compile(r"/_storage/upload/(?P<id>[^/]+)"), ("PUT",), "upload"),
    (re.compile(r"/_storage/results/(?P<id>[^/]+)/(?P<name>[^/]+)"), ("GET",), "download"),
)
STORAGE = ("upload", "download")


class _BodyError(Exception):
    """The request body could not be read as framed."""


class EmulatorHandler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive. Never logs query strings (they hold signatures)."""

    protocol_version = "HTTP/1.1"
    server_version = "PredictionOneEmulator/1.0"

    def version_string(self) -> str:
        return self.server_version

    server: EmulatorHTTPServer

    # -- connection plumbing ---------------------------------------------------------------------------------

    def setup(self) -> None:
        self.timeout = self.server.request_timeout
        super().setup()
        # headers and body go out as separate writes: without this, Nagle + delayed ACK add 40 ms per answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def parse_request(self) -> bool:
        self._expect_continue = False
        self._continued = False
        self._body_done = False
        self._status: int | None = None
        self._log_context: tuple[str, str, str | None] | None = None  # path, endpoint, fault
        self._logged = False
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        """Answer ``100 Continue`` only once the upload is accepted, so rejections cost no body."""
        self._expect_continue = True
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by ``_finish_request`` without their query string."""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s: %s", self.address_string(), _QUERY.sub("?…", format % args))

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # -- framing ---------------------------------------------------------------------------------------------

    def _chunked(self) -> bool:
        return "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise _BodyError(f"invalid Content-Length {raw.strip()[:40]!r}")
        return int(raw)

    def _discard_body(self) -> None:
        """Consume whatever body the request carries so that the connection stays usable."""
        if self._body_done:
            return
        self._body_done = True
        if self._expect_continue and not self._continued:
            self.close_connection = True  # the client waits for 100 Continue; it will not send the body
            return
        try:
            if self._chunked():
                self._discard_chunked()
                return
            remaining = self._content_length() or 0
            while remaining:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    raise _BodyError("body shorter than Content-Length")
                remaining -= len(data)
        except (_BodyError, OSError, ValueError):
            self.close_connection = True

    def _discard_chunked(self) -> None:
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise _BodyError("chunked body ended early")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            while size:
                data = self.rfile.read(min(CHUNK, size))
                if not data:
                    raise _BodyError("chunked body ended early")
                size -= len(data)
            self.rfile.readline(8)

    def _send_continue(self) -> None:
        if self._expect_continue and not self._continued:
            self._continued = True
            self.send_response_only(100)
            self.end_headers()

    def _send(
        self, status: int, body: bytes = b"", content_type: str | None = None, headers: tuple = ()
    ) -> None:
        self._discard_body()
        self._status = status
        self._log_answer()
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any, headers: tuple = ()) -> None:
        request_id = (("x-amzn-RequestId", str(uuid.uuid4())),)
        self._send(status, json.dumps(payload).encode(), JSON, request_id + tuple(headers))

    def _send_api_error(self, error: errors.ApiError) -> None:
        self._send(error.status, error.body(), JSON, (("x-amzn-RequestId", str(uuid.uuid4())),))

    def _send_storage_error(self, error: errors.StorageError) -> None:
        self._send(error.status, error.body(), XML)

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP reset and no answer."""
        self._status = None
        self.close_connection = True
        self._body_done = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.rfile.close()  # the last reference: the descriptor closes now, with RST
        except OSError:
            pass

    # -- dispatch --------------------------------------------------------------------------------------------

    def _url_base(self) -> str:
        host = (self.headers.get("Host") or "").strip()
        return f"http://{host}" if _HOST.fullmatch(host) else self.server.base_url

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        self._query_pairs = parse_qsl(parts.query, keep_blank_values=True)
        try:
            if path == "/_emulator" or path.startswith("/_emulator/"):
                self._admin(path, query)
                return
            self._public(path, query)
        except (ConnectionError, TimeoutError, _BodyError):
            self.close_connection = True
        except Exception:
            LOG.exception("%s %s failed", self.command, parts.path)
            self.close_connection = True
            if self._status is None:
                self._send_json(500, {"message": "Internal Server Error"})

    def _public(self, path: str, query: dict[str, str]) -> None:
        for pattern, methods, endpoint in PUBLIC_ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if self.command not in methods:
                self._log_context = (path, endpoint, None)
                self._send_json(405, {"message": "Method Not Allowed"}, (("Allow", ", ".join(methods)),))
                self._finish_request(path, endpoint, None)
                return
            self._log_context = (path, endpoint, None)
            fault = self._inject(endpoint, query)
            # An answer that goes out carries the fault that shaped it; a lost answer is logged at the end.
            self._log_context = (path, endpoint, None if fault == "lost_answer" else fault)
            if fault in (None, "slow", "lost_answer"):
                getattr(self, f"_route_{endpoint}")(match, query, path, fault)
            if fault == "lost_answer" and self._status is not None:
                fault = None  # the upload was refused, so its answer went out after all
            self._finish_request(path, endpoint, fault)
            return
        self._log_context = (path, "unknown", None)
        self._send_json(404, {"message": "Not Found"})
        self._finish_request(path, "unknown", None)

    def _log_answer(self) -> None:
        """Log an API/storage request as its answer starts, so whoever got the answer finds it logged."""
        if self._log_context is not None and not self._logged:
            self._logged = True
            path, endpoint, fault = self._log_context
            self.server.state.log_request(self.command, path, endpoint, self._status, fault)

    def _finish_request(self, path: str, endpoint: str, fault: str | None) -> None:
        if not self._logged:  # no answer was sent (a reset, a lost answer)
            self._logged = True
            self.server.state.log_request(self.command, path, endpoint, self._status, fault)
        LOG.info("%s %s %s%s", self.command, path, self._status or "-", f" fault={fault}" if fault else "")

    def _inject(self, endpoint: str, query: dict[str, str]) -> str | None:
        """Apply a drawn fault that acts before processing; returns the fault kind, if any."""
        faults = self.server.faults
        kind = faults.draw(endpoint)
        if kind is None or kind == "lost_answer":
            return kind  # lost_answer is applied, and counted, by the upload once it is stored
        faults.record(kind)
        if self._log_context is not None:
            self._log_context = (*self._log_context[:2], kind)
        storage = endpoint in STORAGE
        if kind == "reset":
            self._reset_connection()
        elif kind == "slow":
            self.server.stopping.wait(faults.slow_seconds)
        elif kind == "500":
            if storage:
                self._send_storage_error(
                    errors.StorageError(
                        500, "InternalError", "We encountered an internal error. Please try again."
                    )
                )
            else:
                self._send_api_error(errors.INTERNAL_FAULT)
        elif kind == "502":
            self._send(502, BAD_GATEWAY_HTML, "text/html")
        elif kind == "503":
            if storage:
                self._send_storage_error(
                    errors.StorageError(503, "SlowDown", "Please reduce your request rate.")
                )
            else:
                self._send_json(503, {"message": "Service Unavailable"})
        elif kind == "429":
            retry = (("Retry-After", "1"),)
            if storage:
                error = errors.StorageError(429, "TooManyRequests", "Please reduce your request rate.")
                self._send(429, error.body(), XML, retry)
            else:
                self._send_json(429, {"message": "Too Many Requests"}, retry)
        elif kind == "expired_url":
            self._send_storage_error(Signer.expired(query, self.server.state.now()))
        return kind

    # -- API routes ------------------------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        value = self.headers.get("x-api-key")
        return value.strip() if value else None

    def _api(self, call: Callable[[], dict[str, Any]]) -> None:
        try:
            payload = call()
        except errors.ApiError as error:
            self._send_api_error(error)
            return
        self._send_json(200, payload)

    def _route_upload_url(
        self, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
    ) -> None:
        state = self.server.state
        self._api(lambda: state.create_job(self._api_key(), query.get("filename"), self._url_base()))

    def _route_retrain_status(
        self, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
    ) -> None:
        state = self.server.state
        self._api(lambda: state.job_status(self._api_key(), match["id"], self._url_base()))

    def _route_update_model(
        self, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
    ) -> None:
        state = self.server.state
        self._api(lambda: state.switch_model(self._api_key(), match["id"]))

    def _route_training_status(
        self, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
    ) -> None:
        state = self.server.state
        process_id = query.get("external_process_id")
        self._api(lambda: state.training_status(self._api_key(), process_id, self._url_base()))

    # -- storage routes --------------------------------------------------------------------------------------

    def _route_upload(
        self, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
    ) -> None:
        state = self.server.state
        job_id = match["id"]
        try:
            state.signer.verify("PUT", path, query, state.now(), self._query_pairs)
            if self._chunked():
                raise errors.missing_content_length()
            try:
                length = self._content_length()
            except _BodyError as exc:
                self.close_connection = True
                raise errors.StorageError(400, "InvalidArgument", str(exc)) from exc
            if length is None:
                raise errors.missing_content_length()
            partial = state.begin_upload(job_id)
        except errors.StorageError as error:
            self._send_storage_error(error)
            return
        self._progress = Progress()
        try:
            self._send_continue()
            size, sha256 = self._receive(length, partial)
        except StoreFailed:
            LOG.exception("storing the upload of retrain job %s failed", job_id)
            state.abort_upload(job_id, partial)
            self._send_storage_error(
                errors.StorageError(500, "InternalError", "The upload could not be stored.")
            )
            return
        except (OSError, _BodyError) as exc:
            state.abort_upload(job_id, partial)
            self._body_done = True
            self.close_connection = True
            if isinstance(exc, TimeoutError):  # the client stalled: tell it, if it still listens
                with contextlib.suppress(OSError):
                    self._send_storage_error(errors.incomplete_body(self._progress.value, length))
            return
        self._body_done = True
        try:
            task = state.complete_upload(job_id, partial, size, sha256)
        except errors.StorageError as error:
            self._send_storage_error(error)
            return
        if task is not None:
            self.server.validate_later(task)
        if fault == "lost_answer":
            self.server.faults.record(fault)
            self._reset_connection()
            return
        self._send(200, headers=(("ETag", f'"{sha256[:32]}"'), ("x-amz-checksum-sha256-hex", sha256)))

    def _receive(self, length: int, target: Path) -> tuple[int, str]:
        """Stream exactly ``length`` body bytes to ``target``; returns size and SHA-256."""
        try:
            sha256 = receive_to_file(self.rfile.readinto, length, target, self._progress)
        except BodyEnded as exc:
            raise _BodyError("the client closed the connection before the end of the body") from exc
        return length, sha256

    def _route_download(
        self, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
    ) -> None:
        state = self.server.state
        try:
            state.signer.verify("GET", path, query, state.now(), self._query_pairs)
            result = state.result_for_download(match["id"], match["name"])
            try:
                stat = result.path.stat()
            except OSError as exc:
                raise errors.no_such_key(f"results/{match['id']}/{match['name']}") from exc
            start, end = self._range(stat.st_size)
        except errors.StorageError as error:
            self._send_storage_error(error)
            return
        content_type = (
            "application/zip" if result.name.lower().endswith(".zip") else "application/octet-stream"
        )
        self._send_file(result.path, stat, start, end, content_type)

    def _send_file(self, path: Path, stat: os.stat_result, start: int, end: int, content_type: str) -> None:
        """Answer 200 (or 206 for a part) and stream ``[start, end)`` of the file with sendfile."""
        count = end - start
        headers: list[tuple[str, str]] = [
            ("Content-Type", content_type),
            ("Content-Length", str(count)),
            ("Accept-Ranges", "bytes"),
            ("ETag", f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'),
            ("Last-Modified", self.date_time_string(int(stat.st_mtime))),
        ]
        partial = count != stat.st_size
        if partial:
            headers.append(("Content-Range", f"bytes {start}-{end - 1}/{stat.st_size}"))
        self._discard_body()
        self._status = 206 if partial else 200
        self._log_answer()
        self.send_response(self._status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        with path.open("rb") as source:
            sent = self.connection.sendfile(source, start, count) if count else 0
        if sent != count:
            self.close_connection = True

    def _range(self, size: int) -> tuple[int, int]:
        """The byte range ``[start, end)`` a ``Range`` header asks for; the whole file otherwise."""
        match = _RANGE.fullmatch((self.headers.get("Range") or "").strip())
        if match is None or match.group(1) == match.group(2) == "":
            return 0, size
        first, last = match.group(1), match.group(2)
        if first == "":
            suffix = int(last)
            if suffix == 0:
                raise errors.range_not_satisfiable(size)
            return max(0, size - suffix), size
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
        if start >= size or end <= start:
            raise errors.range_not_satisfiable(size)
        return start, end

    # -- admin routes ----------------------------------------------------------------------------------------

    def _read_json(self) -> dict[str, Any]:
        if self._chunked():
            raise ValueError("admin requests need a Content-Length body, not chunked")
        try:
            length = self._content_length() or 0
        except _BodyError as exc:
            # Where the body ends is unknown: answer 400, then close rather than misread what follows.
            self._body_done = True
            self.close_connection = True
            raise ValueError(f"{exc}: admin requests need a Content-Length of 0 or more bytes") from None
        if length > ADMIN_BODY_LIMIT:
            raise ValueError(f"admin request body too large ({length} bytes)")
        raw = self.rfile.read(length) if length else b""
        self._body_done = True
        if len(raw) != length:
            raise _BodyError("body shorter than Content-Length")
        if not raw.strip():
            return {}
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"admin request body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ValueError("admin request body must be a JSON object")
        return payload

    def _admin(self, path: str, query: dict[str, str]) -> None:
        route = ADMIN.match(self.command, path)
        if route is None:
            self._send_json(404, {"message": f"no admin route {self.command} {path}"})
            return
        action, params, allowed = route
        if action is None:
            self._send_json(405, {"message": "Method Not Allowed"}, (("Allow", ", ".join(allowed)),))
            return
        try:
            body = self._read_json() if self.command in ("POST", "PUT") else {}
            status, payload = action(self, params, query, body)
        except NotFound as exc:
            self._send_json(404, {"message": str(exc)})
            return
        except Conflict as exc:
            self._send_json(409, {"message": str(exc)})
            return
        except (ValueError, TypeError) as exc:
            self._send_json(400, {"message": str(exc)})
            return
        if isinstance(payload, Path):
            try:
                stat = payload.stat()
            except OSError:
                self._send_json(404, {"message": "the results file is gone"})
                return
            self._send_file(payload, stat, 0, stat.st_size, "application/octet-stream")
        else:
            self._send_json(status, payload)
