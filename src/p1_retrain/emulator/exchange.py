"""``HttpExchange``: one request and its answer on a keep-alive connection — body framing, answers, resets.

The routes (``api_routes``, ``storage_routes``) and the dispatch (``handler``) speak HTTP only through this
class: reading or discarding the body, ``100 Continue``, JSON / XML / file answers, a TCP reset. Every answer
is logged to the request log as it starts. Never logs query strings (they hold signatures).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import struct
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p1_retrain.emulator import errors

if TYPE_CHECKING:
    from p1_retrain.emulator.http_server import EmulatorHTTPServer

LOG = logging.getLogger("p1_retrain.emulator")
CHUNK = 1024 * 1024
JSON = "application/json"
XML = "application/xml"
_HOST = re.compile(r"[A-Za-z0-9._-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_QUERY = re.compile(r"\?\S*")


class BodyError(Exception):
    """The request body could not be read as framed."""


class HttpExchange(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive. Subclassed by the dispatch (``EmulatorHandler``)."""

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
        self.body_done = False
        self.answer_status: int | None = None
        self.log_context: tuple[str, str, str | None] | None = None  # path, endpoint, fault
        self._logged = False
        self.query_pairs: list[tuple[str, str]] = []
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        """Answer ``100 Continue`` only once the upload is accepted, so rejections cost no body."""
        self._expect_continue = True
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged by ``finish_request`` without their query string."""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s: %s", self.address_string(), _QUERY.sub("?…", format % args))

    # -- the request -----------------------------------------------------------------------------------------

    def url_base(self) -> str:
        """``http://HOST`` as the client addressed the server, for the URLs an answer hands out."""
        host = (self.headers.get("Host") or "").strip()
        return f"http://{host}" if _HOST.fullmatch(host) else self.server.base_url

    def api_key(self) -> str | None:
        value = self.headers.get("x-api-key")
        return value.strip() if value else None

    # -- framing ---------------------------------------------------------------------------------------------

    def chunked(self) -> bool:
        return "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()

    def content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            raise BodyError(f"invalid Content-Length {raw.strip()[:40]!r}")
        return int(raw)

    def discard_body(self) -> None:
        """Consume whatever body the request carries so that the connection stays usable."""
        if self.body_done:
            return
        self.body_done = True
        if self._expect_continue and not self._continued:
            self.close_connection = True  # the client waits for 100 Continue; it will not send the body
            return
        try:
            if self.chunked():
                self._discard_chunked()
                return
            remaining = self.content_length() or 0
            while remaining:
                data = self.rfile.read(min(CHUNK, remaining))
                if not data:
                    raise BodyError("body shorter than Content-Length")
                remaining -= len(data)
        except (BodyError, OSError, ValueError):
            self.close_connection = True

    def _discard_chunked(self) -> None:
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise BodyError("chunked body ended early")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            while size:
                data = self.rfile.read(min(CHUNK, size))
                if not data:
                    raise BodyError("chunked body ended early")
                size -= len(data)
            self.rfile.readline(8)

    def read_admin_json(self, limit: int) -> dict[str, Any]:
        """The JSON object an admin request carries (``{}`` for none); ValueError names what is wrong."""
        if self.chunked():
            raise ValueError("admin requests need a Content-Length body, not chunked")
        try:
            length = self.content_length() or 0
        except BodyError as exc:
            # Where the body ends is unknown: answer 400, then close rather than misread what follows.
            self.body_done = True
            self.close_connection = True
            raise ValueError(f"{exc}: admin requests need a Content-Length of 0 or more bytes") from None
        if length > limit:
            raise ValueError(f"admin request body too large ({length} bytes)")
        raw = self.rfile.read(length) if length else b""
        self.body_done = True
        if len(raw) != length:
            raise BodyError("body shorter than Content-Length")
        if not raw.strip():
            return {}
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"admin request body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ValueError("admin request body must be a JSON object")
        return payload

    def send_continue(self) -> None:
        if self._expect_continue and not self._continued:
            self._continued = True
            self.send_response_only(100)
            self.end_headers()

    # -- answers ---------------------------------------------------------------------------------------------

    def send(
        self, status: int, body: bytes = b"", content_type: str | None = None, headers: tuple = ()
    ) -> None:
        self.discard_body()
        self.answer_status = status
        self.log_answer()
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

    def send_json(self, status: int, payload: Any, headers: tuple = ()) -> None:
        request_id = (("x-amzn-RequestId", str(uuid.uuid4())),)
        self.send(status, json.dumps(payload).encode(), JSON, request_id + tuple(headers))

    def send_api_error(self, error: errors.ApiError) -> None:
        self.send(error.status, error.body(), JSON, (("x-amzn-RequestId", str(uuid.uuid4())),))

    def send_storage_error(self, error: errors.StorageError) -> None:
        self.send(error.status, error.body(), XML)

    def send_file(self, path: Path, stat: os.stat_result, start: int, end: int, content_type: str) -> None:
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
        self.discard_body()
        self.answer_status = 206 if partial else 200
        self.log_answer()
        self.send_response(self.answer_status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        with path.open("rb") as source:
            sent = self.connection.sendfile(source, start, count) if count else 0
        if sent != count:
            self.close_connection = True

    def reset_connection(self) -> None:
        """Drop the connection with a TCP reset and no answer."""
        self.answer_status = None
        self.close_connection = True
        self.body_done = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.rfile.close()  # the last reference: the descriptor closes now, with RST
        except OSError:
            pass

    # -- request log -----------------------------------------------------------------------------------------

    def log_answer(self) -> None:
        """Log an API/storage request as its answer starts, so whoever got the answer finds it logged."""
        if self.log_context is not None and not self._logged:
            self._logged = True
            path, endpoint, fault = self.log_context
            self.server.state.log_request(self.command, path, endpoint, self.answer_status, fault)

    def finish_request(self, path: str, endpoint: str, fault: str | None) -> None:
        if not self._logged:  # no answer was sent (a reset, a lost answer)
            self._logged = True
            self.server.state.log_request(self.command, path, endpoint, self.answer_status, fault)
        LOG.info(
            "%s %s %s%s", self.command, path, self.answer_status or "-", f" fault={fault}" if fault else ""
        )
