"""``EmulatorServer``: the threaded HTTP server, its storage folder and its background input checks."""

from __future__ import annotations

import contextlib
import logging
import selectors
import shutil
import socket
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from p1_retrain.emulator.admin import EmulatorAdmin
from p1_retrain.emulator.faults import FaultInjector
from p1_retrain.emulator.handler import EmulatorHandler
from p1_retrain.emulator.presign import Signer
from p1_retrain.emulator.state import EmulatorState, Settings, ValidationTask
from p1_retrain.emulator.validation import DataLimits, ValidationCancelled, ValidationResult, validate_upload

LOG = logging.getLogger("p1_retrain.emulator")
DEFAULT_MODELS = {"demo": "demo-key"}


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A thread per connection; knows its state, faults and open connections."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        state: EmulatorState,
        faults: FaultInjector,
        request_timeout: float,
        validation_workers: int,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, EmulatorHandler)
        self.state = state
        self.faults = faults
        self.request_timeout = request_timeout
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._validator = ThreadPoolExecutor(validation_workers, thread_name_prefix="emulator-validate")
        host, port = self.server_address[:2]
        shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - a name, not a bind
        self.base_url = f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut every open connection so that no thread keeps serving after ``stop``."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def validate_later(self, task: ValidationTask) -> None:
        """Check the upload in the background; the job cannot finish before the check has."""
        self._validator.submit(self._validate, task)

    def _validate(self, task: ValidationTask) -> None:
        try:
            result = validate_upload(task.path, task.filename, self.state.limits, self.stopping.is_set)
        except ValidationCancelled:
            return
        except Exception:
            LOG.exception("input check of retrain job %s failed", task.job_id)
            result = ValidationResult(f"{task.filename}: the input check failed unexpectedly")
        self.state.finish_validation(task.job_id, result)

    def shutdown_validation(self) -> None:
        self._validator.shutdown(wait=True, cancel_futures=True)

    def handle_error(self, request: object, client_address: object) -> None:
        LOG.debug("connection from %s ended with an error", client_address, exc_info=True)


class EmulatorServer:
    """The Prediction One emulator on ``host:port`` (``port=0``: a free port). See the package docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        models: Mapping[str, str] | None = None,
        job_seconds: float = 5.0,
        upload_url_ttl: int = 900,
        download_url_ttl: int = 600,
        storage_dir: str | Path | None = None,
        *,
        validate: bool = True,
        limits: DataLimits | None = None,
        request_timeout: float = 120.0,
        validation_workers: int = 2,
    ) -> None:
        self.host = host
        self.port = port
        self.models = dict(DEFAULT_MODELS if models is None else models)
        self.settings = Settings().updated(
            {
                "job_seconds": job_seconds,
                "upload_url_ttl": upload_url_ttl,
                "download_url_ttl": download_url_ttl,
                "validate": validate,
            }
        )
        self.limits = limits or DataLimits()
        self.request_timeout = request_timeout
        self.validation_workers = validation_workers
        self._storage_dir = Path(storage_dir) if storage_dir is not None else None
        self._owned_dir: Path | None = None
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._admin: EmulatorAdmin | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self, ready_timeout: float = 10.0) -> EmulatorServer:
        """Bind, serve in a background thread, and return once an HTTP round trip succeeded."""
        if self._httpd is not None:
            raise RuntimeError("the emulator is already running")
        if self._storage_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="p1-emulator-"))
        storage = self._storage_dir or self._owned_dir
        assert storage is not None
        state = EmulatorState(self.models, self.settings, storage, Signer.random(), self.limits)
        try:
            self._httpd = EmulatorHTTPServer(
                (self.host, self.port), state, FaultInjector(), self.request_timeout, self.validation_workers
            )
        except OSError:
            self._remove_owned_dir()
            raise
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(
            target=self._serve, args=(self._httpd,), name="emulator-http", daemon=True
        )
        self._thread.start()
        self._admin = EmulatorAdmin(self._httpd.base_url)
        try:
            self._admin.health(timeout=ready_timeout)
        except Exception:
            self.stop()
            raise
        return self

    def _serve(self, httpd: EmulatorHTTPServer) -> None:
        """Accept connections until ``stop`` writes to the wake-up socket (no polling interval)."""
        with selectors.DefaultSelector() as selector:
            selector.register(httpd.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                if self._wake_reader in ready:
                    return
                httpd.handle_request()

    def stop(self) -> None:
        """Stop serving, close open connections, end background checks, remove an owned storage folder."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stopping.set()
        httpd.state.notify()
        self._wake_writer.send(b"\0")
        if self._thread is not None:
            self._thread.join(timeout=10)
        httpd.server_close()
        httpd.close_connections()
        httpd.shutdown_validation()
        self._wake_reader.close()
        self._wake_writer.close()
        if self._admin is not None:
            self._admin.close()
        self._remove_owned_dir()

    def _remove_owned_dir(self) -> None:
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------------------------------------

    def _running(self) -> EmulatorHTTPServer:
        if self._httpd is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._httpd

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` with the real port (also when started with ``port=0``)."""
        return self._running().base_url

    @property
    def admin(self) -> EmulatorAdmin:
        self._running()
        assert self._admin is not None
        return self._admin

    @property
    def state(self) -> EmulatorState:
        """The live state, for in-process inspection (the admin routes are the remote equivalent)."""
        return self._running().state
