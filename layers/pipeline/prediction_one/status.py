"""What a status string means: only the finished values are documented; failures are a setting."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from .settings import (
    DEFAULT_FAILURE_STATUSES,
    RETRAIN_FINISHED_STATUS,
    TRAINING_FINISHED_STATUS,
    normalize_statuses,
)


class JobState(StrEnum):
    """The three things a poller needs to know; the values are what the state machine carries."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


def _classify(status: object, finished: str, failure_statuses: Iterable[str]) -> JobState:
    if not isinstance(status, str):
        return JobState.RUNNING
    value = status.strip().casefold()
    if value == finished:
        return JobState.FINISHED
    if value in normalize_statuses(failure_statuses):
        return JobState.FAILED
    return JobState.RUNNING


def classify_retrain(
    status: str | None, failure_statuses: Iterable[str] = DEFAULT_FAILURE_STATUSES
) -> JobState:
    """A retrain job is finished at ``job_finished``, failed at a failure status, else still running."""
    return _classify(status, RETRAIN_FINISHED_STATUS, failure_statuses)


def classify_training(
    status: str | None, failure_statuses: Iterable[str] = DEFAULT_FAILURE_STATUSES
) -> JobState:
    """A training run is finished at ``finished``, failed at a failure status, else still running."""
    return _classify(status, TRAINING_FINISHED_STATUS, failure_statuses)
