"""The real template, state machine and handlers on moto, against the emulator over HTTP."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from prediction_one.zipbuild import build_train_eval_zip

from p1_retrain.local.data import synthetic_csv
from tests.testdata import zip_names

SIGNATURE_MARKERS = ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token")


def _summary(pipeline, run) -> dict:
    return json.loads(pipeline.stack.read_object(run.summary_key))


def test_csv_is_retrained_and_archived_byte_for_byte(pipeline, samples):
    key = f"incoming/demo/{pipeline.unique('sample.csv')}"
    body = (samples / "sample.csv").read_bytes()

    (run,) = pipeline.run((key, body))

    assert run.status == "SUCCEEDED", run.failure
    assert run.result_key.startswith(f"results/demo/{run.retrain_job_id}/")
    archived = pipeline.stack.read_object(run.result_key)
    assert archived == pipeline.admin.result_bytes(run.retrain_job_id)
    job = pipeline.job(run.retrain_job_id)
    assert job["upload_sha256"] == hashlib.sha256(body).hexdigest()
    assert job["filename"] == key.rsplit("/", 1)[1]
    summary = _summary(pipeline, run)
    assert summary["model"] == "demo"
    assert summary["retrain_job_id"] == run.retrain_job_id
    assert summary["status"] == "job_finished"
    assert summary["model_id"] == job["model_id"]
    assert summary["source"]["key"] == key
    assert summary["source"]["version_id"] == run.version_id
    assert summary["result"]["key"] == run.result_key
    assert summary["result"]["size"] == len(archived)
    assert summary["result"]["entries"] == zip_names(archived)
    assert summary["switched"] is False
    assert summary["execution_id"] == run.execution_arn


def test_train_eval_zip_is_retrained(pipeline, samples):
    buffer = io.BytesIO()
    build_train_eval_zip(samples / "train.csv", samples / "eval.csv", buffer, "train.csv", "eval.csv")
    key = f"incoming/churn/{pipeline.unique('train-eval.zip')}"

    (run,) = pipeline.run((key, buffer.getvalue()))

    assert run.status == "SUCCEEDED", run.failure
    job = pipeline.job(run.retrain_job_id)
    assert job["validation"] == "passed"
    assert sorted(table["name"] for table in job["tables"]) == ["eval_src/eval.csv", "train_src/train.csv"]
    assert job["upload_sha256"] == hashlib.sha256(buffer.getvalue()).hexdigest()
    assert pipeline.stack.read_object(run.result_key) == pipeline.admin.result_bytes(run.retrain_job_id)


def test_switch_on_publishes_the_retrained_model(pipeline):
    (run,) = pipeline.run((f"incoming/switcher/{pipeline.unique('data.csv')}", synthetic_csv(1)))

    assert run.status == "SUCCEEDED", run.failure
    assert run.switched is True
    switched_jobs = [item["job_id"] for item in pipeline.admin.switches()]
    assert switched_jobs.count(run.retrain_job_id) == 1
    summary = _summary(pipeline, run)
    assert summary["switched"] is True


def test_switch_off_leaves_the_published_model(pipeline):
    (run,) = pipeline.run((f"incoming/sales/{pipeline.unique('data.csv')}", synthetic_csv(2)))

    assert run.status == "SUCCEEDED", run.failure
    assert run.switched is False
    assert "switch" not in run.state
    assert run.retrain_job_id not in [item["job_id"] for item in pipeline.admin.switches()]
    assert _summary(pipeline, run)["switched"] is False


@pytest.mark.parametrize("name", ["with space.csv", "plus+sign.csv", "ünïcødé データ.csv", "a%20b&c=d.csv"])
def test_keys_are_used_exactly_as_written(pipeline, name):
    key = f"incoming/demo/{pipeline.unique(name)}"

    (run,) = pipeline.run((key, synthetic_csv(3)))

    assert run.status == "SUCCEEDED", run.failure
    assert run.key == key
    assert pipeline.job(run.retrain_job_id)["filename"] == key.rsplit("/", 1)[1]
    assert _summary(pipeline, run)["source"]["key"] == key
    assert pipeline.stack.read_object(run.result_key) == pipeline.admin.result_bytes(run.retrain_job_id)


def test_objects_outside_incoming_and_folder_markers_start_nothing(pipeline):
    before = len(pipeline.stack.executions())
    tag = pipeline.unique("x")
    for key in (
        f"results/demo/{tag}/result.zip",
        f"failed/demo/{tag}.csv.json",
        f"other/{tag}.csv",
        f"{tag}.csv",
        f"incoming-{tag}/demo/data.csv",
        f"incoming/demo/{tag}/",
        f"incoming/{tag}/",
    ):
        pipeline.stack.put_object(key, synthetic_csv(4) if not key.endswith("/") else b"")

    assert pipeline.stack.pump_events() == []
    assert len(pipeline.stack.executions()) == before


def test_empty_file_fails_with_its_error_named_and_recorded(pipeline):
    key = f"incoming/demo/{pipeline.unique('empty.csv')}"
    jobs_before = len(pipeline.admin.jobs())

    (run,) = pipeline.run((key, b""))

    assert run.status == "FAILED"
    assert run.failure["error"] == "EmptyObject"
    assert run.failure["step"] == "Upload"
    record = json.loads(pipeline.stack.read_object(run.failure["failure_key"]))
    assert record["error"] == "EmptyObject"
    assert record["source"]["key"] == key
    assert "empty" in record["message"]
    assert len(pipeline.admin.jobs()) == jobs_before
    published = [
        item
        for item in pipeline.stack.notifications()
        if item["message"].get("failure_record")
        == f"s3://{pipeline.stack.bucket}/{run.failure['failure_key']}"
    ]
    assert [item["subject"] for item in published] == ["Prediction One retrain failed"]
    assert published[0]["message"]["error"] == "EmptyObject" and "Cause" not in json.dumps(published)


def test_documented_api_error_is_named(pipeline):
    (run,) = pipeline.run((f"incoming/ghost/{pipeline.unique('data.csv')}", synthetic_csv(5)))

    assert run.status == "FAILED"
    record = json.loads(pipeline.stack.read_object(run.failure["failure_key"]))
    assert record["error"] == "ApiKeyInvalid"
    assert record["documented_error"]["code"] == 4001000204
    assert record["documented_error"]["message"] == "invalid_api_key."


def test_model_without_a_key_is_named(pipeline):
    (run,) = pipeline.run((f"incoming/nobody/{pipeline.unique('data.csv')}", synthetic_csv(6)))

    assert run.status == "FAILED"
    assert run.failure["error"] == "ModelNotConfigured"
    assert "nobody" in run.failure["message"]


def test_ten_files_for_three_models_at_once(pipeline):
    models = ("demo", "churn", "sales")
    objects = [
        (f"incoming/{models[i % 3]}/{pipeline.unique(f'batch-{i}.csv')}", synthetic_csv(100 + i))
        for i in range(10)
    ]

    runs = pipeline.run(*objects)

    assert [run.status for run in runs] == ["SUCCEEDED"] * 10, [run.failure for run in runs]
    job_ids = {run.retrain_job_id for run in runs}
    assert len(job_ids) == 10
    uploads = [upload for upload in pipeline.admin.uploads() if upload["job_id"] in job_ids]
    assert len(uploads) == 10
    for (key, body), run in zip(objects, runs, strict=True):
        assert run.key == key
        job = pipeline.job(run.retrain_job_id)
        assert job["model"] == key.split("/")[1]
        assert job["upload_sha256"] == hashlib.sha256(body).hexdigest()
        assert pipeline.stack.read_object(run.result_key) == pipeline.admin.result_bytes(run.retrain_job_id)


def test_second_delivery_of_an_event_creates_no_second_job(pipeline):
    (first,) = pipeline.run((f"incoming/demo/{pipeline.unique('once.csv')}", synthetic_csv(7)))
    event = json.loads(
        pipeline.stack.execution_history(first.execution_arn)[0]["executionStartedEventDetails"]["input"]
    )

    replay = pipeline.stack.start_execution("RetrainStateMachine", event, name=pipeline.unique("replay"))
    (second,) = [run for run in pipeline.stack.wait_all(60) if run.execution_arn == replay]

    assert second.status == "SUCCEEDED"
    assert second.duplicate is True
    assert second.retrain_job_id == first.retrain_job_id
    uploads = [upload for upload in pipeline.admin.uploads() if upload["job_id"] == first.retrain_job_id]
    assert len(uploads) == 1
    same_object = [job for job in pipeline.admin.jobs() if job["filename"] == first.key.rsplit("/", 1)[1]]
    assert len(same_object) == 1


def test_no_key_or_signed_url_reaches_logs_history_notifications_or_records(pipeline):
    (run,) = pipeline.run((f"incoming/churn/{pipeline.unique('leak.csv')}", synthetic_csv(8)))
    assert run.status == "SUCCEEDED", run.failure

    stack = pipeline.stack
    texts = list(stack.logs())
    assert any("prediction_one.http" in line or "/v1/external/" in line for line in texts)
    for item in stack.executions():
        texts.extend(
            json.dumps(event, default=str) for event in stack.execution_history(item["executionArn"])
        )
    texts.extend(json.dumps(item) for item in stack.notifications())
    texts.extend(stack.read_object(key).decode("utf-8", "replace") for key in stack.list_keys("failed/"))
    texts.extend(
        stack.read_object(key).decode() for key in stack.list_keys("results/") if key.endswith(".json")
    )
    joined = "\n".join(texts)
    leaked_keys = [model for model, secret in pipeline.api_keys.items() if secret in joined]
    assert leaked_keys == []  # names the models only: a failure must not print the keys themselves
    assert [marker for marker in SIGNATURE_MARKERS if marker in joined] == []


def test_event_delivered_twice_starts_one_execution(pipeline):
    stack = pipeline.stack
    key = f"incoming/demo/{pipeline.unique('twice.csv')}"
    version = stack.put_object(key, synthetic_csv(9))
    retrain = stack.state_machines["RetrainStateMachine"]
    (queue,) = [url for url, machine in stack.event_queues.items() if machine == retrain]
    delivered = stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    (message,) = [item for item in delivered if json.loads(item["Body"])["detail"]["object"]["key"] == key]
    stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    stack.sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
    stack.sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])

    started = stack.pump_events()

    assert len(started) == 2
    assert started[0] == started[1]
    runs = [run for run in stack.wait_all(60) if run.key == key]
    assert [(run.version_id, run.status) for run in runs] == [(version, "SUCCEEDED")]
    assert [job["filename"] for job in pipeline.admin.jobs()].count(key.rsplit("/", 1)[1]) == 1


def test_wait_all_names_what_is_still_running(pipeline):
    key = f"incoming/sales/{pipeline.unique('slow.csv')}"
    pipeline.stack.put_object(key, synthetic_csv(10))

    with pytest.raises(TimeoutError, match=key):
        pipeline.stack.wait_all(0)
    assert [run.status for run in pipeline.stack.wait_all(60) if run.key == key] == ["SUCCEEDED"]


@pytest.mark.parametrize(
    ("machine", "key"),
    [
        ("RetrainStateMachine", "results/demo/{u}/summary.json"),
        ("RetrainStateMachine", "failed/demo/{u}.json"),
        ("TrainWatchStateMachine", "failed/demo/{u}.json"),
        ("TrainWatchStateMachine", "results/demo/training/{u}/summary.json"),
    ],
)
def test_an_execution_for_the_pipelines_own_output_writes_and_publishes_nothing(pipeline, machine, key):
    """Even started by a wrong rule, an execution for an object the pipeline wrote ends at once: no
    failure record (which could start another execution), no notification, no API call."""
    stack = pipeline.stack
    key = key.format(u=pipeline.unique("x"))
    version = stack.put_object(key, b'{"written": "by the pipeline"}')
    keys_before = set(stack.list_keys("failed/")) | set(stack.list_keys("results/"))
    notifications_before = len(stack.notifications())
    requests_before = len(pipeline.admin.requests_log())
    event = {
        "version": "0",
        "id": pipeline.unique("event"),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": "2024-01-01T00:00:00Z",
        "region": stack.region,
        "resources": [f"arn:aws:s3:::{stack.bucket}"],
        "detail": {
            "bucket": {"name": stack.bucket},
            "object": {"key": key, "size": 31, "etag": "e", "version-id": version, "sequencer": "01"},
            "reason": "PutObject",
        },
    }
    arn = stack.start_execution(machine, event, name=pipeline.unique("outside"))
    stack.wait_all(60)
    run = stack.refresh(arn)
    assert run.status == "FAILED"
    assert run.error == "KeyOutsidePrefix"
    assert set(stack.list_keys("failed/")) | set(stack.list_keys("results/")) == keys_before
    assert len(stack.notifications()) == notifications_before
    assert len(pipeline.admin.requests_log()) == requests_before
