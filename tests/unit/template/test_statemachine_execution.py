"""Run statemachine/retrain.asl.json in moto's Step Functions interpreter: what only the retrain does.

The definition is the real file with the template's placeholders filled in; SNS is moto's. What both
workflows do (polling, duplicates, retries, caught failures, notifications) is checked over both machines
in test_workflow_execution.py; here is the model switch after a successful retrain.
"""

from __future__ import annotations

import json

import pytest

from tests.unit.template.scripted_sfn import Run, deployed, runner
from tests.unit.template.workflows import (
    RETRAIN,
    RETRAIN_ARCHIVE,
    RETRAIN_FINISHED,
    RETRAIN_RUNNING,
    SWITCHED,
    upload_answer,
)


@pytest.fixture(scope="module")
def aws(retrain_text, render_asl):
    with deployed(retrain_text, render_asl, "retrain") as deployment:
        yield deployment


def test_success_with_switch_hands_the_archive_to_the_switch(monkeypatch, aws, load_event, request):
    run: Run = runner(monkeypatch, aws, request.node.name)(
        {
            "Upload": [upload_answer(auto_switch=True)],
            "CheckStatus": [RETRAIN_RUNNING, RETRAIN_RUNNING, RETRAIN_FINISHED],
            "Archive": [RETRAIN_ARCHIVE],
            "SwitchModel": [SWITCHED],
        },
        load_event(RETRAIN.event),
    )
    assert run.status == "SUCCEEDED", run.description
    assert run.functions.order == [
        "Upload",
        "CheckStatus",
        "CheckStatus",
        "CheckStatus",
        "Archive",
        "SwitchModel",
    ]
    (archive,) = run.functions.called("Archive")
    (switch,) = run.functions.called("SwitchModel")
    assert switch["archive"] == RETRAIN_ARCHIVE and switch["source"] == archive["source"]
    assert run.output["switch"]["switched"] is True
    assert run.output["archive"] == RETRAIN_ARCHIVE
    assert run.output["notification"]["message_id"]
    (notification,) = run.notifications
    assert notification["MessageAttributes"]["outcome"]["Value"] == "SUCCEEDED"
    assert json.loads(notification["Message"])["switch"] == SWITCHED
