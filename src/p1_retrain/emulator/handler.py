"""``EmulatorHandler``: the HTTP dispatch — which route answers a request, with which injected fault.

Public routes (the API and the presigned storage URLs) go through fault injection, then to ``api_routes``
or ``storage_routes``; ``/_emulator/...`` goes to the ``admin_routes`` action, which gets the server's
``AdminContext``. HTTP framing and answers are ``exchange.HttpExchange``'s.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from p1_retrain.emulator import api_routes, storage_routes
from p1_retrain.emulator.admin_routes import ADMIN
from p1_retrain.emulator.api_routes import Route
from p1_retrain.emulator.exchange import BodyError, HttpExchange
from p1_retrain.emulator.fault_answers import fault_answer
from p1_retrain.emulator.faults import STORAGE_ENDPOINTS
from p1_retrain.emulator.state import Conflict, NotFound

LOG = logging.getLogger("p1_retrain.emulator")
ADMIN_BODY_LIMIT = 1024 * 1024

# (path pattern, allowed methods, endpoint name, route); the first pattern that matches decides.
PUBLIC_ROUTES: tuple[tuple[re.Pattern[str], tuple[str, ...], str, Route], ...] = (
    (re.compile(r"/v1/external/retrain_jobs/upload_url"), ("GET",), "upload_url", api_routes.upload_url),
    (
        re.compile(r"/v1/external/retrain_jobs/(?P<id>[^/]+)/update_model"),
        ("PUT",),
        "update_model",
        api_routes.update_model,
    ),
    (
        re.compile(r"/v1/external/retrain_jobs/(?P<id>[^/]+)"),
        ("GET",),
        "retrain_status",
        api_routes.retrain_status,
    ),
    (re.compile(r"/v1/external/models/results"), ("GET",), "training_status", api_routes.training_status),
    (re.compile(r"/_storage/upload/(?P<id>[^/]+)"), ("PUT",), "upload", storage_routes.upload),
    (
        re.compile(r"/_storage/results/(?P<id>[^/]+)/(?P<name>[^/]+)"),
        ("GET",),
        "download",
        storage_routes.download,
    ),
)


class EmulatorHandler(HttpExchange):
    """One connection; dispatches each request to its route. Never logs query strings (signatures)."""

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        self.query_pairs = parse_qsl(parts.query, keep_blank_values=True)
        try:
            if path == "/_emulator" or path.startswith("/_emulator/"):
                self._admin(path, query)
                return
            self._public(path, query)
        except (ConnectionError, TimeoutError, BodyError):
            self.close_connection = True
        except Exception:
            LOG.exception("%s %s failed", self.command, parts.path)
            self.close_connection = True
            if self.answer_status is None:
                self.send_json(500, {"message": "Internal Server Error"})

    # -- API and storage routes ------------------------------------------------------------------------------

    def _public(self, path: str, query: dict[str, str]) -> None:
        for pattern, methods, endpoint, route in PUBLIC_ROUTES:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if self.command not in methods:
                self.log_context = (path, endpoint, None)
                self.send_json(405, {"message": "Method Not Allowed"}, (("Allow", ", ".join(methods)),))
                self.finish_request(path, endpoint, None)
                return
            self.log_context = (path, endpoint, None)
            fault = self._inject(endpoint, query)
            # An answer that goes out carries the fault that shaped it; a lost answer is logged at the end.
            self.log_context = (path, endpoint, None if fault == "lost_answer" else fault)
            if fault in (None, "slow", "lost_answer"):
                route(self, match, query, path, fault)
            if fault == "lost_answer" and self.answer_status is not None:
                fault = None  # the upload was refused, so its answer went out after all
            self.finish_request(path, endpoint, fault)
            return
        self.log_context = (path, "unknown", None)
        self.send_json(404, {"message": "Not Found"})
        self.finish_request(path, "unknown", None)

    def _inject(self, endpoint: str, query: dict[str, str]) -> str | None:
        """Apply a drawn fault that acts before processing; returns the fault kind, if any."""
        faults = self.server.faults
        kind = faults.draw(endpoint)
        if kind is None or kind == "lost_answer":
            return kind  # lost_answer is applied, and counted, by the upload once it is stored
        faults.record(kind)
        if self.log_context is not None:
            self.log_context = (*self.log_context[:2], kind)
        if kind == "reset":
            self.reset_connection()
        elif kind == "slow":
            self.server.stopping.wait(faults.slow_seconds)
        else:
            answer = fault_answer(kind, endpoint in STORAGE_ENDPOINTS, query, self.server.state.now())
            self.send(answer.status, answer.body, answer.content_type, answer.headers)
        return kind

    # -- admin routes ----------------------------------------------------------------------------------------

    def _admin(self, path: str, query: dict[str, str]) -> None:
        route = ADMIN.match(self.command, path)
        if route is None:
            self.send_json(404, {"message": f"no admin route {self.command} {path}"})
            return
        action, params, allowed = route
        if action is None:
            self.send_json(405, {"message": "Method Not Allowed"}, (("Allow", ", ".join(allowed)),))
            return
        try:
            body = self.read_admin_json(ADMIN_BODY_LIMIT) if self.command in ("POST", "PUT") else {}
            status, payload = action(self.server.admin_context, params, query, body)
        except NotFound as exc:
            self.send_json(404, {"message": str(exc)})
            return
        except Conflict as exc:
            self.send_json(409, {"message": str(exc)})
            return
        except (ValueError, TypeError) as exc:
            self.send_json(400, {"message": str(exc)})
            return
        if isinstance(payload, Path):
            try:
                stat = payload.stat()
            except OSError:
                self.send_json(404, {"message": "the results file is gone"})
                return
            self.send_file(payload, stat, 0, stat.st_size, "application/octet-stream")
        else:
            self.send_json(status, payload)
