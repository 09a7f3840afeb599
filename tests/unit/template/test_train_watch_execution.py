"""Run statemachine/train_watch.asl.json in moto's Step Functions interpreter: what only the watcher does.

What both workflows do (polling, duplicates, retries, caught failures, notifications) is checked over both
machines in test_workflow_execution.py; here is a direct execution input naming a training that has
already finished.
"""

from __future__ import annotations

import pytest

from tests.unit.template.scripted_sfn import Run, deployed, runner
from tests.unit.template.workflows import TRAIN_WATCH, TRAINING_ARCHIVE, start_answer

DIRECT_INPUT = {"model": "demo", "external_process_id": "ep-1"}


@pytest.fixture(scope="module")
def aws(state_machine_sources, render_asl):
    text = state_machine_sources[TRAIN_WATCH.machine][1]
    with deployed(text, render_asl, TRAIN_WATCH.id) as deployment:
        yield deployment


def test_an_already_finished_training_is_archived_without_waiting(monkeypatch, aws, request):
    run: Run = runner(monkeypatch, aws, request.node.name)(
        {"StartWatch": [start_answer("finished")], "ArchiveTraining": [TRAINING_ARCHIVE]}, DIRECT_INPUT
    )
    assert run.status == "SUCCEEDED"
    assert run.functions.order == ["StartWatch", "ArchiveTraining"]
    assert run.functions.called("StartWatch")[0]["request"] == DIRECT_INPUT
    assert run.functions.called("ArchiveTraining")[0]["source"] is None
    (notification,) = run.notifications
    assert notification["MessageAttributes"]["outcome"]["Value"] == "SUCCEEDED"
    assert notification["MessageAttributes"]["workflow"]["Value"] == "training"
