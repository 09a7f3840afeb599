"""Show how each dropped file is doing, read from its execution's history.

On a terminal: a compact table redrawn in place. Otherwise: one plain line per step reached (uploaded,
polled, finished, archived, switched, the outcome). There is one row per execution (``run``), never one
per key: two versions of one key are two runs, told apart by their version id. Lines hold keys, version
ids, job ids and statuses only.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from typing import Any, TextIO

MAX_TABLE_ROWS = 20


@dataclass(frozen=True)
class RunView:
    """What one file's execution has reached so far (``run``: the execution, defaults to the key)."""

    key: str
    phase: str = "waiting"
    retrain_job_id: str | None = None
    polls: int = 0
    job_status: str | None = None
    finished: bool = False
    result_key: str | None = None
    switched: bool | None = None
    switch_reason: str | None = None
    outcome: str | None = None
    error: str | None = None
    run: str | None = None
    version_id: str | None = None

    @property
    def ident(self) -> str:
        return self.run or self.key


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def observe(
    key: str, history: list[dict[str, Any]], run: str | None = None, version_id: str | None = None
) -> RunView:
    """Fold an execution history into a :class:`RunView`."""
    view = RunView(key=key, phase="started" if history else "waiting", run=run, version_id=version_id)
    for event in history:
        kind = event.get("type", "")
        entered = event.get("stateEnteredEventDetails", {})
        exited = event.get("stateExitedEventDetails", {})
        if kind == "TaskStateEntered" and entered.get("name") == "Upload":
            view = replace(view, phase="uploading")
        elif kind == "TaskStateExited" and exited.get("name") == "Upload":
            state = _json(exited.get("output"))
            job = state.get("job") or {}
            view = replace(view, phase="uploaded", retrain_job_id=job.get("retrain_job_id"))
        elif kind == "TaskStateExited" and exited.get("name") == "CheckStatus":
            poll = _json(exited.get("output")).get("poll") or {}
            view = replace(
                view,
                phase="polling",
                polls=int(poll.get("polls") or view.polls + 1),
                job_status=poll.get("status"),
                finished=poll.get("state") == "finished" or view.finished,
            )
        elif kind == "TaskStateExited" and exited.get("name") == "Archive":
            archive = _json(exited.get("output")).get("archive") or {}
            view = replace(view, phase="archived", result_key=archive.get("result_key"))
        elif kind == "TaskStateExited" and exited.get("name") == "SwitchModel":
            switch = _json(exited.get("output")).get("switch") or {}
            view = replace(
                view,
                phase="switched",
                switched=bool(switch.get("switched")),
                switch_reason=switch.get("reason"),
            )
        elif kind == "ExecutionSucceeded":
            view = replace(view, phase="succeeded", outcome="SUCCEEDED")
        elif kind in {"ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}:
            outcome = {"ExecutionFailed": "FAILED", "ExecutionAborted": "ABORTED"}.get(kind, "TIMED_OUT")
            view = replace(view, phase=outcome.lower(), outcome=outcome)
    return view


def _transitions(before: RunView, after: RunView) -> list[str]:
    """Plain descriptions of what ``after`` reached beyond ``before``."""
    lines = []
    if after.retrain_job_id and not before.retrain_job_id:
        lines.append(f"uploaded, retrain job {after.retrain_job_id}")
    if after.polls > before.polls:
        lines.append(f"poll {after.polls}: {after.job_status or 'no status'}")
    if after.finished and not before.finished:
        lines.append("job finished")
    if after.result_key and not before.result_key:
        lines.append(f"archived to {after.result_key}")
    if after.switched is not None and before.switched is None:
        lines.append(
            "model switched" if after.switched else f"not switched ({after.switch_reason or 'no reason'})"
        )
    if after.outcome and not before.outcome:
        lines.append(after.outcome + (f": {after.error}" if after.error else ""))
    return lines


class Progress:
    """Renders :class:`RunView` updates to ``stream`` (live table on a terminal, plain lines otherwise)."""

    def __init__(self, stream: TextIO, live: bool | None = None) -> None:
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._views: dict[str, RunView] = {}  # by run
        self._shown: dict[str, RunView] = {}  # what the plain lines already said, by run
        self._drawn = 0

    def _name(self, view: RunView) -> str:
        """The key, with the version id when another run of the same key is known."""
        shared = any(other.key == view.key and ident != view.ident for ident, other in self._views.items())
        return f"{view.key} (version {view.version_id})" if shared and view.version_id else view.key

    def note(self, text: str) -> None:
        """A line about the demo itself (starting, uploading, writing results)."""
        self._clear()
        print(text, file=self.stream, flush=True)

    def update(self, views: list[RunView]) -> None:
        self._views.update({view.ident: view for view in views if view.ident not in self._views})
        if self.live:
            self._views.update({view.ident: view for view in views})
            self._draw()
            return
        for view in views:
            before = self._shown.get(view.ident, RunView(key=view.key))
            for line in _transitions(before, view):
                print(f"{self._name(view)}: {line}", file=self.stream, flush=True)
            self._shown[view.ident] = view
            self._views[view.ident] = view

    def finish(self) -> None:
        if self.live:
            self._draw()
            self._drawn = 0

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 24)).columns
        views = list(self._views.values())
        done = sum(1 for view in views if view.outcome)
        failed = sum(1 for view in views if view.outcome and view.outcome != "SUCCEEDED")
        lines = [f"{done}/{len(views)} done, {failed} failed"]
        active = [view for view in views if not view.outcome] + [view for view in views if view.outcome]
        for view in active[:MAX_TABLE_ROWS]:
            job = (view.retrain_job_id or "")[:8]
            detail = view.job_status or view.result_key or ""
            if view.outcome:
                detail = view.error or view.result_key or ""
            lines.append(f"  {view.phase:<10} {job:<8} polls {view.polls:<3} {self._name(view)}  {detail}")
        if len(active) > MAX_TABLE_ROWS:
            lines.append(f"  ... and {len(active) - MAX_TABLE_ROWS} more")
        self._clear()
        self.stream.write("".join(line[: width - 1] + "\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)
