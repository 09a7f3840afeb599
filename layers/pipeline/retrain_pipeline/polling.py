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
from retrain_pipeline.timestamps import iso, parse_iso

RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
DEADLINE = "deadline"
STATES = (RUNNING, FINISHED, FAILED, DEADLINE)

# A standard execution fails, uncatchably, past this many history events.
HISTORY_EVENT_LIMIT = 25_000
# One poll of a running job: WaitStateEntered/Exited, TaskStateEntered, LambdaFunctionScheduled/Started/
# Succeeded, TaskStateExited, ChoiceStateEntered/Exited.
HISTORY_EVENTS_PER_POLL = 9
# The share of the history the polls of a job that never finishes may take (the rest: retries, the steps).
HISTORY_SHARE_FOR_POLLING = 0.5


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


def polls_until_deadline(settings: PipelineSettings, *, stop_after: int | None = None) -> int:
    """How many status checks a job that never finishes gets before it is reported at its deadline.

    The count only grows as the deadline grows or the floor, the cap or the ratio shrinks (every wait is
    a non-decreasing function of the job's age), so the template's bounds give the worst case. With
    ``stop_after``, counting stops once the count exceeds it.
    """
    now = datetime(2000, 1, 1, tzinfo=UTC)
    poll = initial_poll(now, settings)
    polls = 0
    while poll["state"] == RUNNING and (stop_after is None or polls <= stop_after):
        now += timedelta(seconds=poll["wait_seconds"])
        poll = next_poll(poll, None, RUNNING, now, settings)
        polls += 1
    return polls
