"""The training watcher end to end: the real template, state machine and handlers on moto, the emulator over
HTTP. A training run is created in the emulator; its request is dropped under training/ or given directly."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.testdata import zip_names

MACHINE = "TrainWatchStateMachine"


def _request(process_id: str) -> bytes:
    return json.dumps({"external_process_id": process_id}).encode()


def _record(pipeline, run) -> dict[str, Any]:
    assert run.failure, run
    return json.loads(pipeline.stack.read_object(run.failure["failure_key"]))


def _start(pipeline, payload: dict[str, Any], name: str | None = None):
    arn = pipeline.stack.start_execution(MACHINE, payload, name=name)
    pipeline.stack.wait_all(90)
    return pipeline.stack.refresh(arn)


def _versions(pipeline, key: str) -> int:
    """How many times ``key`` was written (the bucket is versioned)."""
    answer = pipeline.stack.s3.list_object_versions(Bucket=pipeline.stack.bucket, Prefix=key)
    return sum(1 for item in answer.get("Versions", []) if item["Key"] == key)


def test_a_finished_training_is_archived_identical_to_the_emulators(pipeline):
    process_id = pipeline.admin.create_training("demo", seconds=1.5, outcome="finished")
    key = f"training/demo/{pipeline.unique('run.json')}"

    (run,) = pipeline.run((key, _request(process_id)))

    assert run.status == "SUCCEEDED", run.failure
    assert run.state["training"]["external_process_id"] == process_id
    prefix = f"results/demo/training/{process_id}/"
    assert run.result_key == prefix + "train_result.zip"
    archived = pipeline.stack.read_object(run.result_key)
    assert archived == pipeline.admin.result_bytes(process_id)
    summary = json.loads(pipeline.stack.read_object(prefix + "summary.json"))
    assert summary["result"]["entries"] == zip_names(archived) and summary["result"]["entries"]
    assert (summary["status"], summary["source"]["key"], summary["execution_id"]) == (
        "finished",
        key,
        run.execution_arn,
    )
    notices = [n for n in pipeline.stack.notifications() if isinstance(n["message"], dict)]
    mine = [n for n in notices if n["message"].get("execution_id") == run.execution_arn]
    assert [n["subject"] for n in mine] == ["Prediction One training archived"]


def test_a_failed_training_leaves_a_failure_record(pipeline):
    process_id = pipeline.admin.create_training("churn", seconds=0.5, outcome="failed")
    name = pipeline.unique("run.json")

    (run,) = pipeline.run((f"training/churn/{name}", _request(process_id)))

    assert run.status == "FAILED"
    assert run.error == "TrainingWatchFailed"
    assert run.failure["failure_key"] == f"failed/churn/{name}.json"
    record = _record(pipeline, run)
    assert (record["error"], record["step"], record["training_status"]) == (
        "TrainingFailed",
        "CheckTraining",
        "failed",
    )
    assert process_id in record["message"]
    assert pipeline.stack.list_keys(f"results/churn/training/{process_id}/") == []


def test_bad_json_and_a_missing_process_id_leave_clear_records(pipeline):
    bad_json, missing = pipeline.unique("bad.json"), pipeline.unique("missing.json")

    runs = pipeline.run(
        (f"training/demo/{bad_json}", b'{"external_process_id": "x",'),
        (f"training/demo/{missing}", b'{"externalProcessId": "x"}'),
    )

    assert [run.status for run in runs] == ["FAILED", "FAILED"]
    first, second = (_record(pipeline, run) for run in runs)
    assert runs[0].failure["failure_key"] == f"failed/demo/{bad_json}.json"
    assert first["error"] == "BadTrainingRequest" and "not valid JSON" in first["message"]
    assert runs[1].failure["failure_key"] == f"failed/demo/{missing}.json"
    assert second["error"] == "BadTrainingRequest" and "has no external_process_id" in second["message"]
    assert first["step"] == second["step"] == "StartWatch"


def test_a_deleted_user_is_named_by_its_documented_message(pipeline):
    process_id = pipeline.admin.create_training("sales", seconds=0.5, outcome="finished")
    pipeline.admin.delete_user("sales")

    (run,) = pipeline.run((f"training/sales/{pipeline.unique('run.json')}", _request(process_id)))

    assert run.status == "FAILED"
    record = _record(pipeline, run)
    assert record["error"] == "UserDeleted"
    assert record["documented_error"]["message"] == "This user may be deleted."
    assert "This user may be deleted." in record["message"]


def test_a_direct_start_archives_and_a_second_one_downloads_nothing(pipeline):
    process_id = pipeline.admin.create_training("demo", seconds=0.5, outcome="finished")
    payload = {"model": "demo", "external_process_id": process_id}

    first = _start(pipeline, payload)
    second = _start(pipeline, payload)

    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert first.state["archive"]["already_archived"] is False
    assert second.state["archive"]["already_archived"] is True
    assert second.result_key == first.result_key
    assert _versions(pipeline, first.result_key) == 1
    assert _versions(pipeline, first.state["archive"]["summary_key"]) == 1
    assert pipeline.stack.read_object(first.result_key) == pipeline.admin.result_bytes(process_id)


def test_an_event_delivered_twice_is_watched_once(pipeline):
    process_id = pipeline.admin.create_training("demo", seconds=0.5, outcome="finished")
    key = f"training/demo/{pipeline.unique('twice.json')}"
    body = _request(process_id)
    (run,) = pipeline.run((key, body))
    head = pipeline.stack.s3.head_object(Bucket=pipeline.stack.bucket, Key=key)
    again = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": pipeline.stack.account_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": pipeline.stack.region,
        "resources": [f"arn:aws:s3:::{pipeline.stack.bucket}"],
        "detail": {
            "bucket": {"name": pipeline.stack.bucket},
            "object": {
                "key": key,
                "size": len(body),
                "etag": head["ETag"].strip('"'),
                "version-id": run.version_id,
                "sequencer": "0",
            },
            "reason": "PutObject",
        },
    }

    duplicate = _start(pipeline, again, name=f"redelivered-{uuid.uuid4().hex[:8]}")

    assert (run.status, duplicate.status) == ("SUCCEEDED", "SUCCEEDED")
    assert duplicate.state["duplicate"] is True
    assert duplicate.state["created_by_execution"] == run.execution_arn
    assert "archive" not in duplicate.state and "notification" not in duplicate.state
