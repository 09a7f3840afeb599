"""``EmulatorServer``: starts and stops the emulator — its HTTP server thread, state and storage folder."""

from __future__ import annotations

import selectors
import shutil
import socket
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from p1_retrain.emulator.admin import EmulatorAdmin
from p1_retrain.emulator.faults import FaultInjector
from p1_retrain.emulator.handler import EmulatorHandler
from p1_retrain.emulator.http_server import EmulatorHTTPServer
from p1_retrain.emulator.presign import Signer
from p1_retrain.emulator.state import EmulatorState, Settings
from p1_retrain.emulator.validation import DataLimits

DEFAULT_MODELS = {"demo": "demo-key"}


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
                (self.host, self.port),
                EmulatorHandler,
                state,
                FaultInjector(),
                self.request_timeout,
                self.validation_workers,
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
