"""The local stack's own parts, without deploying anything: template reading, intrinsics, progress."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from p1_retrain.local import template as tpl
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.intrinsics import evaluate
from p1_retrain.local.progress import Progress, observe

ROOT = Path(__file__).resolve().parents[2]


def test_template_functions_state_machines_and_layers_are_found():
    local = tpl.build(ROOT / "template.yaml", {"PollIntervalSeconds": "1"}, "us-east-1")

    assert {source.code_dir.name for source in local.functions.values()} >= {
        "upload",
        "check_status",
        "archive",
        "switch_model",
        "record_failure",
    }
    for source in local.functions.values():
        assert source.module_path.is_file()
    retrain = local.state_machines["RetrainStateMachine"]
    assert "${UploadFunctionArn}" in retrain.definition
    assert set(retrain.substitutions) >= {"UploadFunctionArn", "NotificationTopicArn"}
    assert local.layer_folders() == [ROOT / "layers" / "pipeline"]
    assert local.managed_layer_packages() == ["aws_lambda_powertools"]
    functions = local.resources_of_type("AWS::Lambda::Function")
    assert all("ZipFile" in body["Properties"]["Code"] for body in functions.values())


def test_unknown_parameter_is_refused_by_name():
    with pytest.raises(LocalStackError, match="PollIntervalSecs"):
        tpl.build(ROOT / "template.yaml", {"PollIntervalSecs": "1"}, "us-east-1")


def test_missing_handler_file_is_named(tmp_path):
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: functions/gone/, Handler: app.lambda_handler, Runtime: python3.11}\n"
    )
    with pytest.raises(LocalStackError, match=r"function Fn: .*functions/gone/app\.py not found"):
        tpl.build(tmp_path / "template.yaml", {}, "us-east-1")


def test_references_to_resources_created_outside_moto_become_literals():
    document = {
        "A": {"Ref": "Secret"},
        "B": {"Fn::GetAtt": ["Machine", "Name"]},
        "C": {"Fn::Sub": "x-${Machine}-${Machine.Name}-${Other}"},
        "D": {"Fn::Sub": ["${Secret}/${v}", {"v": {"Ref": "Secret"}}]},
    }
    literals = {"Secret": {"Ref": "arn:secret"}, "Machine": {"Ref": "arn:sm", "Name": "sm"}}

    assert tpl.replace_refs(document, literals) == {
        "A": "arn:secret",
        "B": "sm",
        "C": {"Fn::Sub": "x-arn:sm-sm-${Other}"},
        "D": {"Fn::Sub": ["arn:secret/${v}", {"v": "arn:secret"}]},
    }


def test_intrinsics_known_before_deployment_are_evaluated():
    refs = {"AWS::StackName": "stack", "AWS::Region": "eu-west-1", "Env": "dev"}

    assert evaluate({"Fn::Sub": "${AWS::StackName}/keys-${Env}"}, refs) == "stack/keys-dev"
    assert evaluate({"Fn::Join": ["-", [{"Ref": "Env"}, "x"]]}, refs) == "dev-x"
    assert evaluate({"Fn::Sub": ["${a}.${AWS::Region}", {"a": {"Ref": "Env"}}]}, refs) == "dev.eu-west-1"
    with pytest.raises(LocalStackError, match="Fn::GetAtt"):
        evaluate({"Fn::GetAtt": ["Bucket", "Arn"]}, refs)
    with pytest.raises(LocalStackError, match="Ref Missing"):
        evaluate({"Ref": "Missing"}, refs)


def _exited(name: str, state: dict) -> dict:
    return {"type": "TaskStateExited", "stateExitedEventDetails": {"name": name, "output": json.dumps(state)}}


HISTORY = [
    {"type": "ExecutionStarted"},
    {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Upload"}},
    _exited("Upload", {"job": {"retrain_job_id": "job-1"}}),
    _exited("CheckStatus", {"poll": {"polls": 1, "status": "job_running", "state": "running"}}),
    _exited("CheckStatus", {"poll": {"polls": 2, "status": "job_finished", "state": "finished"}}),
    _exited("Archive", {"archive": {"result_key": "results/demo/job-1/r.zip"}}),
    _exited("SwitchModel", {"switch": {"switched": True, "reason": "newest"}}),
    {"type": "ExecutionSucceeded"},
]


def test_progress_reads_each_step_from_the_history():
    view = observe("incoming/demo/a.csv", HISTORY)

    assert (view.retrain_job_id, view.polls, view.job_status, view.finished) == (
        "job-1",
        2,
        "job_finished",
        True,
    )
    assert (view.result_key, view.switched, view.outcome) == ("results/demo/job-1/r.zip", True, "SUCCEEDED")
    assert observe("incoming/demo/a.csv", HISTORY[:3]).phase == "uploaded"


def test_plain_progress_prints_each_step_once():
    stream = io.StringIO()
    progress = Progress(stream, live=False)
    for length in (3, 4, 4, len(HISTORY)):
        progress.update([observe("incoming/demo/a.csv", HISTORY[:length])])

    assert stream.getvalue().splitlines() == [
        "incoming/demo/a.csv: uploaded, retrain job job-1",
        "incoming/demo/a.csv: poll 1: job_running",
        "incoming/demo/a.csv: poll 2: job_finished",
        "incoming/demo/a.csv: job finished",
        "incoming/demo/a.csv: archived to results/demo/job-1/r.zip",
        "incoming/demo/a.csv: model switched",
        "incoming/demo/a.csv: SUCCEEDED",
    ]


def test_live_progress_redraws_its_table_in_place():
    stream = io.StringIO()
    progress = Progress(stream, live=True)
    progress.update([observe("incoming/demo/a.csv", HISTORY[:3]), observe("incoming/demo/b.csv", [])])
    progress.update([observe("incoming/demo/a.csv", HISTORY)])
    progress.finish()

    text = stream.getvalue()
    assert text.count("\x1b[3F\x1b[J") == 2  # the 3-line table (header + 2 files) was redrawn twice
    last = text.rsplit("\x1b[J", 1)[1].splitlines()
    assert last[0] == "1/2 done, 0 failed"
    assert "waiting" in last[1] and "incoming/demo/b.csv" in last[1]
    assert "succeeded" in last[2] and "results/demo/job-1/r.zip" in last[2]


def test_a_pattern_eventbridge_rejects_stops_the_stack_before_deploying(monkeypatch):
    import types

    from p1_retrain.local.stack import LocalStack

    rules = types.ModuleType("p1_retrain.local.event_rules")

    class InvalidEventPattern(ValueError):
        pass

    def validate_pattern(pattern):
        if "detail" in pattern:
            raise InvalidEventPattern("field path detail.object.key appears twice")

    rules.InvalidEventPattern = InvalidEventPattern
    rules.validate_pattern = validate_pattern
    monkeypatch.setitem(sys.modules, "p1_retrain.local.event_rules", rules)
    stack = LocalStack(ROOT / "template.yaml", "http://127.0.0.1:9", {"demo": "key"})

    with pytest.raises(LocalStackError, match=r"rule RetrainStateMachineObjectCreated .*appears twice"):
        stack.start()
    assert stack.endpoint_url == ""  # refused before any server started
