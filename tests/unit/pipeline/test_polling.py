"""The polling schedule (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from retrain_pipeline.polling import initial_poll, next_poll
from retrain_pipeline.timestamps import iso

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_initial_poll(settings_factory: Any) -> None:
    poll = initial_poll(T0, settings_factory())
    assert poll == {
        "wait_seconds": 30,
        "polls": 0,
        "started_at": "2024-05-01T12:00:00.000Z",
        "deadline_at": "2024-05-02T12:00:00.000Z",
        "status": None,
        "state": "running",
    }


@pytest.mark.parametrize(
    ("age_seconds", "expected_wait"),
    [(10, 30), (299, 30), (301, 31), (1200, 120), (3000, 300), (20_000, 300)],
)
def test_wait_grows_with_age_between_floor_and_cap(
    settings_factory: Any, age_seconds: int, expected_wait: int
) -> None:
    settings = settings_factory()
    poll = next_poll(
        initial_poll(T0, settings), "job_running", "running", T0 + timedelta(seconds=age_seconds), settings
    )
    assert poll["wait_seconds"] == expected_wait
    assert poll["polls"] == 1
    assert poll["state"] == "running"
    assert poll["checked_at"] == iso(T0 + timedelta(seconds=age_seconds))


def test_polls_count_and_fields_carry_over(settings_factory: Any) -> None:
    settings = settings_factory()
    poll = initial_poll(T0, settings)
    for n in range(1, 4):
        poll = next_poll(poll, "job_running", "running", T0 + timedelta(minutes=n), settings)
        assert poll["polls"] == n
    poll = next_poll(
        poll, "job_finished", "finished", T0 + timedelta(minutes=5), settings, model_id=7, message="ok"
    )
    assert (poll["state"], poll["status"], poll["model_id"], poll["message"]) == (
        "finished",
        "job_finished",
        7,
        "ok",
    )
    assert poll["started_at"] == "2024-05-01T12:00:00.000Z"


def test_never_waits_past_the_deadline(settings_factory: Any) -> None:
    settings = settings_factory(job_deadline_hours=1.0)
    poll = initial_poll(T0, settings)
    poll = next_poll(poll, "job_running", "running", T0 + timedelta(minutes=59, seconds=50), settings)
    assert poll["state"] == "running"
    assert poll["wait_seconds"] == 10


def test_deadline_once_past_it(settings_factory: Any) -> None:
    settings = settings_factory(job_deadline_hours=1.0)
    start = initial_poll(T0, settings)
    at_deadline = next_poll(start, "job_running", "running", T0 + timedelta(hours=1), settings)
    assert at_deadline["state"] == "deadline"
    assert at_deadline["wait_seconds"] >= 1
    # A job that finished or failed is reported as such even when it is late.
    late = T0 + timedelta(hours=2)
    assert next_poll(start, "job_finished", "finished", late, settings)["state"] == "finished"
    assert next_poll(start, "job_failed", "failed", late, settings)["state"] == "failed"


def test_unknown_state_is_refused(settings_factory: Any) -> None:
    settings = settings_factory()
    with pytest.raises(ValueError, match="unknown job state 'deadline'"):
        next_poll(initial_poll(T0, settings), "x", "deadline", T0, settings)


def test_wait_seconds_are_whole_numbers(settings_factory: Any) -> None:
    settings = settings_factory(
        poll_interval_seconds=1, max_poll_interval_seconds=10, poll_backoff_ratio=0.333
    )
    poll = next_poll(initial_poll(T0, settings), None, "running", T0 + timedelta(seconds=10), settings)
    assert poll["wait_seconds"] == 4
    assert isinstance(poll["wait_seconds"], int)
