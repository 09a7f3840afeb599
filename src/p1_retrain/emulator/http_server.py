"""``EmulatorHTTPServer``: the threaded HTTP server, its open connections and its background input checks.

It serves any request handler class (``server.EmulatorServer`` gives it ``handler.EmulatorHandler``), so this
module does not depend on the routes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from socketserver import BaseRequestHandler

from p1_retrain.emulator.admin_routes import AdminContext
from p1_retrain.emulator.faults import FaultInjector
from p1_retrain.emulator.state import EmulatorState, ValidationTask
from p1_retrain.emulator.validation import ValidationCancelled, ValidationResult, validate_upload

LOG = logging.getLogger("p1_retrain.emulator")


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A thread per connection; knows its state, faults, open connections and the admin actions' context."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: type[BaseRequestHandler],
        state: EmulatorState,
        faults: FaultInjector,
        request_timeout: float,
        validation_workers: int,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler_class)
        self.state = state
        self.faults = faults
        self.request_timeout = request_timeout
        self.stopping = threading.Event()
        self.admin_context = AdminContext(state, faults, self.stopping)
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
