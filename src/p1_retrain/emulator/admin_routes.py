"""The ``/_emulator/`` admin routes: method + path pattern -> action. Listed in the package docstring."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p1_retrain.emulator.faults import FaultInjector, FaultPlan
from p1_retrain.emulator.state import JOB_STATUSES, TRAINING_STATUSES, EmulatorState


@dataclass(frozen=True)
class AdminContext:
    """What the admin actions act on: the state, the fault injector, and the server's stop signal."""

    state: EmulatorState
    faults: FaultInjector
    stopping: threading.Event


# -- admin actions: (context, path params, query, JSON body) -> (status, payload) ----------------------------

AdminAction = Callable[[AdminContext, dict[str, str], dict[str, str], dict[str, Any]], tuple[int, Any]]


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
    if name not in body:
        raise ValueError(f"missing field {name!r}")
    value = body[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"field {name!r} has the wrong type")
    return value


def _timeout(query: dict[str, str]) -> float:
    try:
        timeout = float(query.get("timeout", "30"))
    except ValueError as exc:
        raise ValueError(f"timeout must be a number of seconds, got {query.get('timeout')!r}") from exc
    if not 0 <= timeout <= 3600:
        raise ValueError("timeout must be between 0 and 3600 seconds")
    return timeout


def _wait(
    ctx: AdminContext, item_id: str, query: dict[str, str], known: tuple[str, ...], default: str
) -> Any:
    statuses = [s for s in query.get("status", default).split(",") if s]
    unknown = sorted(set(statuses) - set(known))
    if unknown or not statuses:
        raise ValueError(f"unknown statuses {unknown or '(none)'}; choose from {list(known)}")
    view, reached = ctx.state.wait_for(item_id, statuses, _timeout(query), ctx.stopping.is_set)
    return 200, {"reached": reached, **view}


def _set_settings(ctx: AdminContext, p: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> Any:
    model = body.pop("model", None)
    changes = {name: value for name, value in body.items() if value is not None}
    return 200, ctx.state.set_settings(changes, model)


def _set_faults(ctx: AdminContext, p: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> Any:
    allowed = {"rate", "seed", "kinds", "endpoints", "slow_seconds"}
    if set(body) - allowed:
        raise ValueError(f"unknown fault fields {sorted(set(body) - allowed)}")
    plan = FaultPlan.build(
        _field(body, "rate", (int, float)),
        body.get("seed", 0),
        body.get("kinds"),
        body.get("endpoints"),
        body.get("slow_seconds"),
    )
    ctx.faults.configure(plan)
    return 200, plan.as_dict()


def _result_bytes(ctx: AdminContext, p: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> Any:
    return 200, ctx.state.result_file(p["id"]).path  # streamed from disk


def _reset(ctx: AdminContext, p: dict[str, str], q: dict[str, str], body: dict[str, Any]) -> Any:
    ctx.faults.reset()
    ctx.state.reset()
    return 200, {"reset": True}


def _ok(value: Any = None) -> dict[str, Any]:
    return {"ok": True} if value is None else value


class AdminRoutes:
    """Method + path pattern → action. Documented in the package docstring."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, AdminAction]]] = []

    def add(self, pattern: str, **actions: AdminAction) -> None:
        self._routes.append((re.compile(f"/_emulator{pattern}"), actions))

    def match(
        self, method: str, path: str
    ) -> tuple[AdminAction | None, dict[str, str], tuple[str, ...]] | None:
        for pattern, actions in self._routes:
            found = pattern.fullmatch(path)
            if found:
                return actions.get(method), found.groupdict(), tuple(actions)
        return None


ADMIN = AdminRoutes()
ADMIN.add("/health", GET=lambda ctx, p, q, b: (200, {"ok": True}))
ADMIN.add(
    "/models",
    GET=lambda ctx, p, q, b: (200, ctx.state.models()),
    POST=lambda ctx, p, q, b: (201, ctx.state.add_model(_field(b, "name"), _field(b, "api_key"))),
)
ADMIN.add(
    "/credentials/deactivate",
    POST=lambda ctx, p, q, b: (200, _ok(ctx.state.deactivate_credential(_field(b, "api_key")))),
)
ADMIN.add(
    "/credentials/delete",
    POST=lambda ctx, p, q, b: (200, _ok(ctx.state.delete_credential(_field(b, "api_key")))),
)
ADMIN.add(
    "/models/(?P<name>[^/]+)/delete_user",
    POST=lambda ctx, p, q, b: (200, _ok(ctx.state.delete_user(p["name"]))),
)
ADMIN.add(
    "/models/(?P<name>[^/]+)/delete",
    POST=lambda ctx, p, q, b: (200, _ok(ctx.state.delete_model(p["name"]))),
)
ADMIN.add(
    "/models/(?P<name>[^/]+)/delete_configuration",
    POST=lambda ctx, p, q, b: (200, _ok(ctx.state.delete_configuration(p["name"]))),
)
ADMIN.add("/jobs", GET=lambda ctx, p, q, b: (200, ctx.state.jobs()))
ADMIN.add("/jobs/(?P<id>[^/]+)/delete", POST=lambda ctx, p, q, b: (200, _ok(ctx.state.delete_job(p["id"]))))
ADMIN.add(
    "/jobs/(?P<id>[^/]+)/wait", GET=lambda ctx, p, q, b: _wait(ctx, p["id"], q, JOB_STATUSES, "job_finished")
)
ADMIN.add(
    "/jobs/(?P<id>[^/]+)/result",
    GET=_result_bytes,
    PUT=lambda ctx, p, q, b: (200, ctx.state.set_result_file(p["id"], _field(b, "path"))),
)
ADMIN.add(
    "/settings",
    GET=lambda ctx, p, q, b: (200, ctx.state.effective_settings(q.get("model")).as_dict()),
    PUT=_set_settings,
)
ADMIN.add(
    "/faults",
    GET=lambda ctx, p, q, b: (200, ctx.faults.plan.as_dict() if ctx.faults.plan else None),
    PUT=_set_faults,
    DELETE=lambda ctx, p, q, b: (200, _ok(ctx.faults.clear())),
)
ADMIN.add("/faults/counts", GET=lambda ctx, p, q, b: (200, ctx.faults.counts()))
ADMIN.add("/uploads", GET=lambda ctx, p, q, b: (200, ctx.state.uploads()))
ADMIN.add("/switches", GET=lambda ctx, p, q, b: (200, ctx.state.switches()))
ADMIN.add("/requests", GET=lambda ctx, p, q, b: (200, ctx.state.requests_log()))
ADMIN.add(
    "/trainings",
    GET=lambda ctx, p, q, b: (200, ctx.state.trainings()),
    POST=lambda ctx, p, q, b: (
        201,
        {
            "external_process_id": ctx.state.create_training(
                _field(b, "model"), b.get("seconds", 0.0), b.get("outcome", "finished")
            )
        },
    ),
)
ADMIN.add(
    "/trainings/(?P<id>[^/]+)/wait",
    GET=lambda ctx, p, q, b: _wait(ctx, p["id"], q, TRAINING_STATUSES, "finished"),
)
ADMIN.add(
    "/clock",
    POST=lambda ctx, p, q, b: (
        200,
        {"offset_seconds": ctx.state.advance_clock(_field(b, "advance_seconds", (int, float)))},
    ),
)
ADMIN.add("/reset", POST=_reset)
