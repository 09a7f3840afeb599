"""Status classification: finished, configurable failures, anything else running."""

from __future__ import annotations

import pytest
from prediction_one.status import JobState, classify_retrain, classify_training


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("job_finished", JobState.FINISHED),
        ("JOB_FINISHED", JobState.FINISHED),
        (" job_finished ", JobState.FINISHED),
        ("job_failed", JobState.FAILED),
        ("Canceled", JobState.FAILED),
        ("error", JobState.FAILED),
        ("job_created", JobState.RUNNING),
        ("job_running", JobState.RUNNING),
        ("finished", JobState.RUNNING),  # the training word does not finish a retrain job
        ("", JobState.RUNNING),
        (None, JobState.RUNNING),
    ],
)
def test_classify_retrain(status, state):
    assert classify_retrain(status) is state


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("finished", JobState.FINISHED),
        ("Finished", JobState.FINISHED),
        ("failed", JobState.FAILED),
        ("running", JobState.RUNNING),
        ("job_finished", JobState.RUNNING),
    ],
)
def test_classify_training(status, state):
    assert classify_training(status) is state


def test_failure_statuses_are_a_setting():
    assert classify_retrain("aborted", {"Aborted"}) is JobState.FAILED
    assert classify_retrain("job_failed", {"aborted"}) is JobState.RUNNING
    assert classify_training("TIMEOUT", ["timeout"]) is JobState.FAILED


def test_job_state_values_are_what_the_state_machine_carries():
    assert [s.value for s in JobState] == ["running", "finished", "failed"]
    assert JobState.FINISHED == "finished"
