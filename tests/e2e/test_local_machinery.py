"""The local stack's own parts, without deploying anything: template reading, environments, output
capture, the in-process Lambda runtime."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from pathlib import Path

import pytest

from p1_retrain.local import template as tpl
from p1_retrain.local.capture import OutputCapture
from p1_retrain.local.environment import FunctionEnvironments
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.intrinsics import evaluate
from p1_retrain.local.progress import Progress, observe
from p1_retrain.local.runtime import DeployedFunction, LambdaRuntime
from p1_retrain.local.template import FunctionSource

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


def test_functions_that_disagree_see_their_own_environment_concurrently(monkeypatch):
    monkeypatch.delenv("P1_LOCAL_SHARED", raising=False)
    environments = FunctionEnvironments(
        {
            "one": {"P1_LOCAL_SHARED": "same", "P1_LOCAL_OWN": "one", "P1_LOCAL_ONLY_ONE": "x"},
            "two": {"P1_LOCAL_SHARED": "same", "P1_LOCAL_OWN": "two"},
        }
    )
    assert environments.shared == {"P1_LOCAL_SHARED": "same"}
    assert environments.differing == ["P1_LOCAL_ONLY_ONE", "P1_LOCAL_OWN"]
    seen: dict[str, tuple] = {}
    inside = threading.Barrier(2)

    def read(function: str) -> None:
        with environments.applied(function):
            inside.wait(timeout=10)  # both functions are inside their environment at the same time
            seen[function] = (
                os.environ["P1_LOCAL_SHARED"],
                os.getenv("P1_LOCAL_OWN"),
                os.environ.get("P1_LOCAL_ONLY_ONE"),
                "P1_LOCAL_ONLY_ONE" in os.environ,
            )

    environments.install()
    try:
        threads = [threading.Thread(target=read, args=(name,)) for name in ("one", "two")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        outside = os.environ.get("P1_LOCAL_OWN")
    finally:
        environments.uninstall()

    assert seen == {"one": ("same", "one", "x", True), "two": ("same", "two", None, False)}
    assert outside is None
    assert "P1_LOCAL_SHARED" not in os.environ
    assert type(os.environ) is os._Environ


def test_capture_keeps_handler_output_and_passes_the_rest_on(capsys):
    capture = OutputCapture(named_loggers=("p1_local_test.http",))
    capture.install()
    try:
        print("from the test itself")
        with capture.function_context("fn-1"):
            print("first line\nsecond", end="")
            print(" line")
            sys.stderr.write("to stderr\n")
            import logging

            logging.getLogger("p1_local_test.http").warning("GET /v1/x -> 200")
    finally:
        capture.uninstall()

    assert [(line.function, line.stream, line.text) for line in capture.lines()] == [
        ("fn-1", "stdout", "first line"),
        ("fn-1", "stdout", "second line"),
        ("fn-1", "stderr", "to stderr"),
        ("fn-1", "logging", "WARNING p1_local_test.http GET /v1/x -> 200"),
    ]
    assert capsys.readouterr().out == "from the test itself\n"


HANDLER = """
class ModelNotConfigured(Exception):
    pass

def lambda_handler(event, context):
    if event.get("fail"):
        raise ModelNotConfigured("model 'x' has no key in the secret")
    if event.get("unserializable"):
        return {"value": object()}
    left = context.get_remaining_time_in_millis() > 0
    return {"echo": event, "function": context.function_name, "left": left}
"""


def _runtime(tmp_path: Path) -> tuple[LambdaRuntime, DeployedFunction]:
    (tmp_path / "app.py").write_text(HANDLER)
    function = DeployedFunction(
        name="stack-Fn-ABC",
        arn="arn:aws:lambda:us-east-1:123456789012:function:stack-Fn-ABC",
        source=FunctionSource("Fn", tmp_path, "app", "lambda_handler"),
        environment={},
        timeout_seconds=30,
    )
    runtime = LambdaRuntime([function], OutputCapture(), namespace="test_runtime")
    runtime.load()
    return runtime, function


def test_runtime_answers_like_lambda(tmp_path):
    runtime, function = _runtime(tmp_path)
    try:
        assert runtime.resolve(function.arn) is function
        assert runtime.resolve(f"{function.arn}:$LATEST") is function
        assert runtime.resolve("stack-Fn-ABC") is function
        assert runtime.resolve("other") is None

        ok = runtime.invoke(function, b'{"a": 1}')
        assert ok.error is None
        assert json.loads(ok.payload) == {"echo": {"a": 1}, "function": "stack-Fn-ABC", "left": True}

        failed = runtime.invoke(function, json.dumps({"fail": True}))
        body = json.loads(failed.payload)
        assert failed.error == "Unhandled"
        assert body["errorType"] == "ModelNotConfigured"
        assert body["errorMessage"] == "model 'x' has no key in the secret"
        assert "runtime.py" not in "".join(body["stackTrace"])
        assert any("app.py" in frame for frame in body["stackTrace"])

        unserializable = runtime.invoke(function, json.dumps({"unserializable": True}))
        assert unserializable.error == "Unhandled"
        assert json.loads(unserializable.payload)["errorType"] == "Runtime.MarshalError"
    finally:
        runtime.unload()


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


def test_logging_configuration_made_while_installed_is_undone():
    import logging

    existing = logging.getLogger("p1_local_test.existing")
    existing.setLevel(logging.WARNING)
    existing.propagate = True
    kept = logging.NullHandler()
    existing.addHandler(kept)
    capture = OutputCapture()
    capture.install()
    try:
        existing.setLevel(logging.DEBUG)
        existing.propagate = False
        existing.addHandler(logging.StreamHandler(sys.stdout))
        created = logging.getLogger("p1_local_test.created")
        created.setLevel(logging.INFO)
        created.addHandler(logging.StreamHandler(sys.stdout))
        created.init = True  # what Powertools marks a configured logger with
    finally:
        capture.uninstall()

    assert (existing.level, existing.propagate, existing.handlers) == (logging.WARNING, True, [kept])
    assert (created.level, created.propagate, created.handlers) == (logging.NOTSET, True, [])
    assert not hasattr(created, "init")
