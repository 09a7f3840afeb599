"""A job that never finishes must end in JobDeadlineExceeded, never in the history limit.

A standard execution fails past 25,000 history events with an error no Catch sees: no failure record, no
notification, an orphaned job. Each poll costs HISTORY_EVENTS_PER_POLL events, so the template's bounds
on the polling parameters must keep the worst accepted combination within a safe share of the limit.
"""

from __future__ import annotations

import dataclasses
import tomllib
from typing import Any

import pytest
from retrain_pipeline.polling import (
    HISTORY_EVENT_LIMIT,
    HISTORY_EVENTS_PER_POLL,
    HISTORY_SHARE_FOR_POLLING,
    polls_until_deadline,
)
from retrain_pipeline.settings import PipelineSettings

from tests.unit.template.conftest import ROOT
from tests.unit.template.scripted_sfn import deployed, runner
from tests.unit.template.workflows import RETRAIN_ARCHIVE, RETRAIN_FINISHED, RETRAIN_RUNNING, upload_answer

POLLING = {
    "PollIntervalSeconds": "poll_interval_seconds",
    "MaxPollIntervalSeconds": "max_poll_interval_seconds",
    "PollBackoffRatio": "poll_backoff_ratio",
    "JobDeadlineHours": "job_deadline_hours",
}
BUDGET = HISTORY_SHARE_FOR_POLLING * HISTORY_EVENT_LIMIT


def polling_events(settings: PipelineSettings) -> int:
    """History events the polls of a job that never finishes cost (counting stops past the limit)."""
    stop_after = HISTORY_EVENT_LIMIT // HISTORY_EVENTS_PER_POLL
    return polls_until_deadline(settings, stop_after=stop_after) * HISTORY_EVENTS_PER_POLL


def settings_for(values: dict[str, float]) -> PipelineSettings:
    return dataclasses.replace(
        PipelineSettings(client=None),  # type: ignore[arg-type]
        **{POLLING[name]: value for name, value in values.items()},
    )


def worst_accepted(parameters: dict[str, Any]) -> dict[str, float]:
    """The corner of the accepted box that polls most: the longest deadline, the shortest waits."""
    for name in POLLING:
        bound = "MaxValue" if name == "JobDeadlineHours" else "MinValue"
        assert bound in parameters[name], f"{name} has no {bound}: any value would be accepted"
    return {
        name: float(parameters[name]["MaxValue" if name == "JobDeadlineHours" else "MinValue"])
        for name in POLLING
    }


def test_the_worst_accepted_polling_stays_within_half_the_history_limit(sam_template):
    worst = worst_accepted(sam_template["Parameters"])
    events = polling_events(settings_for(worst))
    assert events <= BUDGET, f"{worst}: {events} history events for polling alone"


def test_a_tighter_bound_is_what_keeps_it_there(sam_template):
    """The computation is not vacuous: one step past a bound (the issue's 230 h at the defaults) breaks it."""
    defaults = {name: float(sam_template["Parameters"][name]["Default"]) for name in POLLING}
    assert polling_events(settings_for(defaults)) <= BUDGET
    too_long = {**defaults, "JobDeadlineHours": 230.0}
    assert polling_events(settings_for(too_long)) > HISTORY_EVENT_LIMIT
    assert sam_template["Parameters"]["JobDeadlineHours"]["MaxValue"] < 230


def test_every_environment_in_samconfig_is_accepted(sam_template):
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    parameters = sam_template["Parameters"]
    for environment, commands in config.items():
        if not isinstance(commands, dict) or "deploy" not in commands:
            continue
        overrides = dict(
            item.split("=", 1) for item in commands["deploy"]["parameters"].get("parameter_overrides", [])
        )
        for name, value in overrides.items():
            declared = parameters[name]
            if declared["Type"] == "Number" and "MinValue" in declared:
                assert declared["MinValue"] <= float(value) <= declared.get("MaxValue", float("inf")), (
                    environment,
                    name,
                )
        chosen = {name: float(overrides.get(name, parameters[name]["Default"])) for name in POLLING}
        assert chosen["MaxPollIntervalSeconds"] >= chosen["PollIntervalSeconds"], environment
        assert polling_events(settings_for(chosen)) <= BUDGET, environment


@pytest.fixture(scope="module")
def aws(retrain_text, render_asl):
    with deployed(retrain_text, render_asl, "history") as deployment:
        yield deployment


def test_one_poll_costs_the_counted_history_events(monkeypatch, aws, load_event, request):
    """Measured on the real definition: executions that differ by three polls differ by 3 x the count."""
    run = runner(monkeypatch, aws, request.node.name)
    lengths = {}
    for polls in (1, 4):
        execution = run(
            {
                "Upload": [upload_answer()],
                "CheckStatus": [RETRAIN_RUNNING] * polls + [RETRAIN_FINISHED],
                "Archive": [RETRAIN_ARCHIVE],
            },
            load_event("object-created.json"),
        )
        assert execution.status == "SUCCEEDED", execution.description
        history = aws.sfn.get_execution_history(executionArn=execution.execution_arn, maxResults=1000)
        lengths[polls] = len(history["events"])
    assert (lengths[4] - lengths[1]) == 3 * HISTORY_EVENTS_PER_POLL


@pytest.mark.parametrize(
    ("machine", "wait", "task", "choice"),
    [
        ("RetrainStateMachine", "WaitForJob", "CheckStatus", "JobState"),
        ("TrainWatchStateMachine", "WaitForTraining", "CheckTraining", "TrainingState"),
    ],
)
def test_both_workflows_poll_with_the_same_wait_task_choice_loop(
    state_machine_sources, render_asl, machine, wait, task, choice
):
    states = render_asl(state_machine_sources[machine][1])["States"]
    assert states[wait]["Type"] == "Wait" and states[wait]["Next"] == task
    assert states[task]["Type"] == "Task" and states[task]["Next"] == choice
    assert states[choice]["Type"] == "Choice" and states[choice]["Default"] == wait
