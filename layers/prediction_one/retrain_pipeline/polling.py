"""The polling schedule: pure functions from the previous poll state to the next one.

The first wait is POLL_INTERVAL_SECONDS; afterwards the wait grows with the job's age
(``ratio × seconds since upload``), never below the floor nor above MAX_POLL_INTERVAL_SECONDS, and never
past the deadline (``started_at + JOB_DEADLINE_HOURS``), so a long job costs few polls and a stuck job
is reported on time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from retrain_pipeline.settings import PipelineSettings

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
DEADLINE = "deadline"
STATES = (RUNNING, FINISHED, FAILED, DEADLINE)


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with a ``Z`` suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _wait_seconds(
    started_at: datetime, deadline_at: datetime, now: datetime, settings: PipelineSettings
) -> int:
    age = max(0.0, (now - started_at).total_seconds())
    wait = min(
        float(settings.max_poll_interval_seconds),
        max(float(settings.poll_interval_seconds), settings.poll_backoff_ratio * age),
    )
    until_deadline = (deadline_at - now).total_seconds()
    return max(1, math.ceil(min(wait, until_deadline)))


def initial_poll(now: datetime, settings: PipelineSettings) -> dict[str, Any]:
    """The poll state right after the upload (``now`` is the upload time)."""
    deadline_at = now + timedelta(hours=settings.job_deadline_hours)
    return {
        "wait_seconds": _wait_seconds(now, deadline_at, now, settings),
        "polls": 0,
        "started_at": iso(now),
        "deadline_at": iso(deadline_at),
        "status": None,
        "state": RUNNING,
    }


def next_poll(
    previous: Mapping[str, Any],
    status: str | None,
    state: str,
    now: datetime,
    settings: PipelineSettings,
    *,
    message: str | None = None,
    model_id: int | None = None,
) -> dict[str, Any]:
    """The poll state after one status check.

    ``state`` is the classified job state (running/finished/failed); a job still running at or after its
    deadline becomes ``deadline``.
    """
    if state not in (RUNNING, FINISHED, FAILED):
        raise ValueError(f"unknown job state {state!r}; expected running, finished or failed")
    started_at = parse_iso(previous["started_at"])
    deadline_at = parse_iso(previous["deadline_at"])
    if state == RUNNING and now >= deadline_at:
        state = DEADLINE
    return {
        "wait_seconds": _wait_seconds(started_at, deadline_at, now, settings),
        "polls": int(previous.get("polls") or 0) + 1,
        "started_at": previous["started_at"],
        "deadline_at": previous["deadline_at"],
        "checked_at": iso(now),
        "status": status,
        "state": state,
        "message": message,
        "model_id": model_id,
    }
