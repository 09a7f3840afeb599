"""Training watch requests: what a ``training/<model>/<name>.json`` object or a direct start must hold, and
the failure records the shared RecordFailure function writes for the watcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from retrain_pipeline import idempotency, keys
from retrain_pipeline.errors import BadTrainingRequest, FolderMarker, KeyOutsideModelFolder

WATCHER = "arn:aws:states:us-east-1:123456789012:execution:TrainWatch-Ab12:"


@pytest.fixture
def watch(stack: Any) -> Iterator[Any]:
    # Import the handlers before capsys/capfd swap sys.stdout (their loggers keep the stream they start with).
    for name in ("start_watch", "check_training", "archive_training"):
        stack.load_app(name)
    idempotency.persistence.cache_clear()
    yield stack
    idempotency.persistence.cache_clear()


def start(stack: Any, request: Any, execution_id: str | None = None) -> dict[str, Any]:
    execution_id = execution_id or stack.execution_arn()
    return stack.invoke("start_watch", {"request": request, "execution_id": execution_id})


def failed_start(stack: Any, request: Any) -> tuple[dict[str, Any], BaseException]:
    """The state RecordFailure receives when StartWatch raised: the raw input + error + failed_step."""
    with pytest.raises(Exception) as raised:
        start(stack, request)
    return stack.failed_state(request, raised.value, "StartWatch"), raised.value


def status_calls(stack: Any) -> int:
    return sum(1 for item in stack.emulator.admin.requests_log() if item["endpoint"] == "training_status")


# Request objects


@pytest.mark.parametrize(
    ("key", "body", "error", "fragments"),
    [
        (
            "training/demo/run.json",
            b'{"external_process_id": ',
            BadTrainingRequest,
            ["not valid JSON", "line 1"],
        ),
        (
            "training/demo/run.json",
            b'{"process_id": "p-1"}',
            BadTrainingRequest,
            ["has no external_process_id"],
        ),
        ("training/demo/run.json", b'{"external_process_id": 42}', BadTrainingRequest, ["JSON number"]),
        (
            "training/demo/run.json",
            b'{"external_process_id": "  "}',
            BadTrainingRequest,
            ["non-empty string"],
        ),
        (
            "training/demo/run.json",
            b'{"external_process_id": "a\\nb"}',
            BadTrainingRequest,
            ["control character"],
        ),
        ("training/demo/run.json", b'["p-1"]', BadTrainingRequest, ["JSON array, not an object"]),
        ("training/demo/run.json", b"\xff\xfe{}", BadTrainingRequest, ["not UTF-8"]),
        ("training/demo/run.json", b"", BadTrainingRequest, ["is empty"]),
        ("training/demo/run.json", b" " * (64 * 1024 + 1), BadTrainingRequest, ["larger than 65536 bytes"]),
        (
            "training/demo/run.txt",
            b'{"external_process_id": "p-1"}',
            BadTrainingRequest,
            ["does not end in .json"],
        ),
        (
            "training/demo/run.json",
            b'{"model": "churn", "external_process_id": "p-1"}',
            BadTrainingRequest,
            ["names model 'churn'", "model 'demo'"],
        ),
        ("training/demo/", b"", FolderMarker, ["folder marker"]),
        (
            "training/run.json",
            b'{"external_process_id": "p-1"}',
            KeyOutsideModelFolder,
            ["training/<model>/<name>"],
        ),
    ],
)
def test_bad_request_objects_are_refused_before_any_api_call(
    watch: Any, key: str, body: bytes, error: type, fragments: list[str]
) -> None:
    event = watch.put(key, body)
    with pytest.raises(error) as raised:
        start(watch, event)
    message = str(raised.value)
    assert f"s3://{watch.bucket}/{key}" in message or repr(key) in message
    for fragment in fragments:
        assert fragment in message
    assert status_calls(watch) == 0


def test_a_bom_and_surrounding_spaces_are_tolerated(watch: Any) -> None:
    process_id = watch.emulator.admin.create_training("demo")
    body = b"\xef\xbb\xbf" + json.dumps({"model": "demo", "external_process_id": f" {process_id}\n"}).encode()
    state = start(watch, watch.put("training/demo/run.json", body))
    assert state["training"]["external_process_id"] == process_id
    assert state["poll"]["state"] == "finished"


def test_a_request_deleted_before_it_was_read(watch: Any) -> None:
    event = watch.put("training/demo/gone.json", b'{"external_process_id": "p-1"}')
    watch.s3.delete_object(Bucket=watch.bucket, Key="training/demo/gone.json")
    event["detail"]["object"].pop("version-id")
    with pytest.raises(BadTrainingRequest, match="no longer exists"):
        start(watch, event)


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"external_process_id": "p-1"}, "has no model"),
        ({"model": "de/mo", "external_process_id": "p-1"}, "model folder name"),
        ({"model": " demo", "external_process_id": "p-1"}, "model folder name"),
        ({"model": "demo"}, "has no external_process_id"),
        ({"model": "demo", "external_process_id": ""}, "non-empty string"),
        ({"model": "demo", "external_process_id": "x" * 513}, "longer than 512"),
        ({"detail": {"bucket": {"name": "b"}}}, "detail.object.key"),
    ],
)
def test_bad_direct_inputs_are_refused(watch: Any, payload: dict[str, Any], fragment: str) -> None:
    with pytest.raises(BadTrainingRequest) as raised:
        start(watch, payload)
    assert "the execution input" in str(raised.value)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("process_id", "segment"),
    [
        ("4c3f2633-c9eb-409c-a7ea-7ec7a949f55c", "4c3f2633-c9eb-409c-a7ea-7ec7a949f55c"),
        ("run_1.v2~x", "run_1.v2~x"),
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        ("a b", "a%20b"),
    ],
)
def test_process_ids_become_one_key_segment(process_id: str, segment: str) -> None:
    assert keys.key_segment(process_id) == segment
    assert keys.training_summary_key("demo", process_id) == f"results/demo/training/{segment}/summary.json"


# Failure records (RecordFailure, shared with the retrain workflow)


def test_bad_json_leaves_a_clear_failure_record(watch: Any) -> None:
    state, raised = failed_start(watch, watch.put("training/demo/2024/run.json", b"{not json"))
    execution = WATCHER + "bad-json"
    output = watch.record_failure(state, execution)
    notification = output.pop("notification")
    assert notification["workflow"] == "training" and notification["error"] == "BadTrainingRequest"
    assert notification["failure_record"].endswith("/failed/demo/2024/run.json.json")
    assert output == {
        "failure_key": "failed/demo/2024/run.json.json",
        "error": "BadTrainingRequest",
        "message": str(raised),
        "step": "StartWatch",
        "execution_id": execution,
    }
    record = watch.read_json(output["failure_key"])
    assert record["workflow"] == "training"
    assert record["model"] == "demo" and record["external_process_id"] is None
    assert "not valid JSON" in record["message"] and "training/demo/2024/run.json" in record["message"]
    assert '"external_process_id"' in record["advice"]
    assert record["source"]["key"] == "training/demo/2024/run.json"
    uri = f"s3://{watch.bucket}/training/demo/2024/run.json"
    assert record["replay"]["command"] == f"aws s3 cp {uri} {uri} --metadata-directive REPLACE"
    assert "stackTrace" not in json.dumps(record)


def test_a_missing_process_id_leaves_a_clear_failure_record(watch: Any) -> None:
    state, _ = failed_start(watch, watch.put("training/demo/run.json", b'{"id": "p-1"}'))
    output = watch.record_failure(state)
    assert (output["failure_key"], output["error"]) == ("failed/demo/run.json.json", "BadTrainingRequest")
    assert "has no external_process_id" in output["message"]


def test_a_failed_run_is_recorded_with_its_status(watch: Any) -> None:
    process_id = watch.emulator.admin.create_training("demo", outcome="failed")
    state = start(
        watch, watch.put("training/demo/run.json", json.dumps({"external_process_id": process_id}).encode())
    )
    assert state["poll"]["state"] == "failed"
    # The TrainingFailed Pass state of the ASL, then CheckTrainingFailed.
    message = "Prediction One reported a failure status"
    state = watch.failed_with(state, "TrainingFailed", message, "CheckTraining")
    output = watch.record_failure(state)
    assert output["failure_key"] == "failed/demo/run.json.json"
    assert output["error"] == "TrainingFailed"
    assert process_id in output["message"] and "'failed'" in output["message"]
    record = watch.read_json(output["failure_key"])
    assert record["training_status"] == "failed"
    assert record["external_process_id"] == process_id
    assert record["timings"]["requested_at"] == state["training"]["requested_at"]
    assert record["step"] == "CheckTraining"
    assert "check the training run" in record["advice"]


def test_a_deadline_is_recorded(watch: Any) -> None:
    process_id = watch.emulator.admin.create_training("demo", outcome="never")
    state = start(watch, {"model": "demo", "external_process_id": process_id}, WATCHER + "slow")
    state = watch.failed_with(state, "TrainingDeadlineExceeded", "still running", "CheckTraining")
    output = watch.record_failure(state, WATCHER + "slow")
    assert output["failure_key"] == f"failed/demo/training/{process_id}.json"
    assert "JOB_DEADLINE_HOURS" in output["message"]


def test_a_direct_start_failure_names_the_replay(watch: Any) -> None:
    state, raised = failed_start(watch, {"model": "demo", "external_process_id": "no-such-process"})
    assert type(raised).__name__ == "BadRequest"
    output = watch.record_failure(state, WATCHER + "direct")
    assert output["failure_key"] == "failed/demo/training/no-such-process.json"
    record = watch.read_json(output["failure_key"])
    assert "Not found external_process_id." in record["message"]
    assert "external_process_id belongs to this model" in record["advice"]
    command = record["replay"]["command"]
    assert command.startswith(
        "aws stepfunctions start-execution --state-machine-arn "
        "arn:aws:states:us-east-1:123456789012:stateMachine:TrainWatch-Ab12 --input "
    )
    assert json.loads(command.split("--input ", 1)[1].strip("'")) == {
        "model": "demo",
        "external_process_id": "no-such-process",
    }


def test_a_deleted_user_is_recorded_with_its_documented_row(watch: Any) -> None:
    event = watch.put("training/demo/run.json", json.dumps({"external_process_id": "p-1"}).encode())
    watch.emulator.admin.delete_user("demo")
    state, raised = failed_start(watch, event)
    assert type(raised).__name__ == "UserDeleted"
    record = watch.read_json(watch.record_failure(state)["failure_key"])
    assert record["error"] == "UserDeleted"
    assert record["documented_error"] == {
        "code": 4001000204,
        "error": "PREDA_EXTERNAL_BAD_REQUEST",
        "message": "This user may be deleted.",
        "reason": "the user information may have been deleted",
    }
    assert "This user may be deleted." in record["message"]


@pytest.mark.parametrize(
    ("request_body", "failure_key"),
    [
        (None, "failed/_unknown/training/lost.json"),  # not even an object
        ({"model": "../x", "external_process_id": "p-1"}, "failed/_unknown/training/p-1.json"),
    ],
)
def test_unusable_direct_inputs_still_leave_a_record(watch: Any, request_body: Any, failure_key: str) -> None:
    state = {"error": {"Error": "BadTrainingRequest", "Cause": "bad input"}, "failed_step": "StartWatch"}
    if request_body:
        state.update(request_body)
    output = watch.record_failure(state, WATCHER + "lost")
    assert output["failure_key"] == failure_key
    assert watch.read_json(failure_key)["replay"]["how"]


def test_a_key_outside_a_model_folder_is_recorded_as_unknown(watch: Any) -> None:
    state, _ = failed_start(watch, watch.put("training/run.json", b"{}"))
    output = watch.record_failure(state)
    assert (output["failure_key"], output["error"]) == (
        "failed/_unknown/run.json.json",
        "KeyOutsideModelFolder",
    )


def test_retrain_failures_keep_their_own_records(watch: Any) -> None:
    state = {**watch.put("incoming/demo/a.csv", b""), "error": {"Error": "EmptyObject", "Cause": "x"}}
    output = watch.record_failure({**state, "failed_step": "Upload"})
    record = watch.read_json(output["failure_key"])
    assert output["failure_key"] == "failed/demo/a.csv.json"
    assert "workflow" not in record and "retrain_job_id" in record


def test_a_failure_metric_names_the_watch(watch: Any, capsys: pytest.CaptureFixture[str]) -> None:
    watch.record_failure({"error": {"Error": "X", "Cause": "y"}, "failed_step": "ArchiveTraining"})
    assert "TrainingWatchesFailed" in capsys.readouterr().out
