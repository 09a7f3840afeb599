"""Upload handler: validation, job creation, idempotency, lost upload answers."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import pytest
from prediction_one import errors as p1_errors
from retrain_pipeline.errors import (
    BadZipLayout,
    EmptyObject,
    FolderMarker,
    KeyOutsideModelFolder,
    ModelNotConfigured,
    SecretMalformed,
    UnsupportedFileType,
)


def test_csv_upload_creates_one_job_and_returns_the_contract_state(stack: Any) -> None:
    body = stack.csv_bytes()
    event = stack.put("incoming/demo/sales.csv", body)
    execution = stack.execution_arn("first")
    state = stack.upload(event, execution)

    assert set(state) >= {"source", "job", "poll", "duplicate", "execution_id"}
    assert state["duplicate"] is False
    assert state["execution_id"] == execution
    assert state["source"]["key"] == "incoming/demo/sales.csv"
    assert state["source"]["version_id"] == event["detail"]["object"]["version-id"]
    job = state["job"]
    assert set(job) == {"model", "retrain_job_id", "filename", "accepted_at", "uploaded_at", "auto_switch"}
    assert (job["model"], job["filename"], job["auto_switch"]) == ("demo", "sales.csv", False)
    assert state["poll"]["polls"] == 0 and state["poll"]["state"] == "running"
    assert state["poll"]["wait_seconds"] == 1

    jobs = stack.emulator.admin.jobs()
    assert [j["id"] for j in jobs] == [job["retrain_job_id"]]
    uploads = stack.emulator.admin.uploads()
    assert len(uploads) == 1
    assert stack.emulator.admin.wait_job(job["retrain_job_id"], timeout=30)["status"] == "job_finished"
    json.dumps(state)


@pytest.mark.parametrize(
    "key",
    ["incoming/demo/with space.csv", "incoming/demo/a+b=c.csv", "incoming/demo/データ 2024 ✓.csv"],
)
def test_awkward_keys_are_uploaded_under_their_own_name(stack: Any, key: str) -> None:
    state = stack.upload(stack.put(key, stack.csv_bytes()))
    assert state["source"]["key"] == key
    assert state["job"]["filename"] == key.rsplit("/", 1)[1]
    job = stack.emulator.admin.job(state["job"]["retrain_job_id"])
    assert key.rsplit("/", 1)[1] in json.dumps(job, ensure_ascii=False)


def test_a_1000_byte_key(stack: Any) -> None:
    key = "incoming/demo/" + "k" * (1000 - len("incoming/demo/") - 4) + ".csv"
    assert len(key.encode()) == 1000
    state = stack.upload(stack.put(key, stack.csv_bytes()))
    assert state["source"]["key"] == key


def test_zip_with_train_and_eval_is_accepted(stack: Any) -> None:
    state = stack.upload(stack.put("incoming/demo/bundle.zip", stack.zip_bytes()))
    finished = stack.wait_finished(state)
    assert finished["poll"]["state"] == "finished"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (lambda stack: stack.zip_bytes(("train_src/train.csv",)), "no evaluation data"),
        (lambda stack: stack.zip_bytes(("data.csv", "eval_src/e.csv")), "no training data"),
        (lambda stack: b"PK not really a zip" * 10, "not a readable zip archive"),
    ],
)
def test_bad_zip_layout_is_refused_before_any_api_call(stack: Any, body: Any, match: str) -> None:
    event = stack.put("incoming/demo/bad.zip", body(stack))
    with pytest.raises(BadZipLayout, match=match) as refused:
        stack.upload(event)
    assert "incoming/demo/bad.zip" in str(refused.value)
    assert stack.emulator.admin.requests_log() == []


@pytest.mark.parametrize(
    ("key", "body", "error"),
    [
        ("incoming/demo/empty.csv", b"", EmptyObject),
        ("incoming/demo/", b"", FolderMarker),
        ("incoming/demo/report.xlsx", b"xx", UnsupportedFileType),
        ("incoming/loose.csv", b"a,b\n1,2\n", KeyOutsideModelFolder),
    ],
)
def test_bad_input_is_refused_before_any_api_call(stack: Any, key: str, body: bytes, error: type) -> None:
    with pytest.raises(error) as refused:
        stack.upload(stack.put(key, body))
    assert key in str(refused.value)
    assert stack.emulator.admin.requests_log() == []


def test_unknown_model(stack: Any) -> None:
    with pytest.raises(ModelNotConfigured, match="'churn'") as missing:
        stack.upload(stack.put("incoming/churn/a.csv", stack.csv_bytes()))
    assert stack.secret_id in str(missing.value)
    assert stack.emulator.admin.requests_log() == []


def test_malformed_secret(stack: Any) -> None:
    stack.set_secret(["demo-key"])
    with pytest.raises(SecretMalformed, match="not an object"):
        stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))


def test_wrong_api_key_is_the_documented_row(stack: Any) -> None:
    stack.set_secret({"demo": "not-a-key"})
    with pytest.raises(p1_errors.ApiKeyInvalid, match="invalid_api_key"):
        stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))


def test_auto_switch_from_the_secret_entry(stack: Any) -> None:
    stack.set_secret({"demo": {"api_key": "demo-key", "auto_switch": True}})
    state = stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))
    assert state["job"]["auto_switch"] is True


def test_same_event_twice_is_one_job(stack: Any) -> None:
    event = stack.put("incoming/demo/a.csv", stack.csv_bytes())
    first = stack.upload(event, stack.execution_arn("one"))
    again_same_execution = stack.upload(event, stack.execution_arn("one"))
    other_execution = stack.upload(event, stack.execution_arn("two"))

    assert len(stack.emulator.admin.jobs()) == 1
    assert len(stack.emulator.admin.uploads()) == 1
    assert again_same_execution["duplicate"] is False
    assert again_same_execution["job"] == first["job"]
    assert other_execution["duplicate"] is True
    assert other_execution["job"]["retrain_job_id"] == first["job"]["retrain_job_id"]
    assert other_execution["created_by_execution"] == stack.execution_arn("one")


def test_a_new_version_is_a_new_job(stack: Any) -> None:
    first = stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes(seed=1)))
    second = stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes(seed=2)))
    assert first["job"]["retrain_job_id"] != second["job"]["retrain_job_id"]
    assert second["duplicate"] is False
    assert len(stack.emulator.admin.jobs()) == 2


def test_the_exact_version_named_by_the_event_is_uploaded(stack: Any) -> None:
    old = stack.csv_bytes(rows=101)
    event = stack.put("incoming/demo/a.csv", old)
    stack.put("incoming/demo/a.csv", stack.csv_bytes(rows=150))
    state = stack.upload(event)
    (upload,) = stack.emulator.admin.uploads()
    assert upload["size"] == len(old)
    job = stack.emulator.admin.job(state["job"]["retrain_job_id"])
    assert job["upload_sha256"] == hashlib.sha256(old).hexdigest()


def test_lost_upload_answer_checks_the_job_instead_of_failing(stack: Any, logs: io.StringIO) -> None:
    stack.emulator.admin.set_faults(rate=1.0, kinds=["lost_answer"], endpoints=["upload"])
    state = stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))
    stack.emulator.admin.clear_faults()
    assert len(stack.emulator.admin.jobs()) == 1
    assert len(stack.emulator.admin.uploads()) == 1
    assert stack.emulator.admin.fault_counts().get("lost_answer", 0) >= 1
    assert stack.wait_finished(state)["poll"]["state"] == "finished"
    assert "Upload answer not received but the job started" in logs.getvalue()


def test_upload_that_never_arrives_is_sent_again(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from prediction_one import PredictionOneClient

    real_upload = PredictionOneClient.upload
    calls: list[int] = []

    def first_attempt_never_arrives(self: Any, url: str, body: Any, length: int) -> None:
        calls.append(length)
        if len(calls) == 1:
            body.read(10)  # a partial read, then the connection drops before the server stored anything
            raise p1_errors.ConnectionFailed("connection reset", endpoint="PUT /upload")
        real_upload(self, url, body, length)

    monkeypatch.setattr(PredictionOneClient, "upload", first_attempt_never_arrives)
    body = stack.csv_bytes()
    state = stack.upload(stack.put("incoming/demo/a.csv", body))
    assert calls == [len(body), len(body)]
    (upload,) = stack.emulator.admin.uploads()
    assert upload["size"] == len(body)
    assert stack.wait_finished(state)["poll"]["state"] == "finished"


def test_expired_upload_url_gets_a_new_one(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL that expired before the file arrived is replaced; the empty first job is not a duplicate."""
    from prediction_one import PredictionOneClient

    real_get_upload_url = PredictionOneClient.get_upload_url
    issued: list[str] = []

    def first_url_expires(self: Any, filename: str) -> Any:
        target = real_get_upload_url(self, filename)
        issued.append(target.retrain_job_id)
        if len(issued) == 1:
            stack.emulator.admin.advance_clock(3600)  # past the upload URL's lifetime
        return target

    monkeypatch.setattr(PredictionOneClient, "get_upload_url", first_url_expires)
    body = stack.csv_bytes()
    state = stack.upload(stack.put("incoming/demo/a.csv", body))
    assert len(issued) == 2
    assert state["job"]["retrain_job_id"] == issued[1]
    (upload,) = stack.emulator.admin.uploads()
    assert upload["size"] == len(body)
    statuses = {job["id"]: job["status"] for job in stack.emulator.admin.jobs()}
    assert statuses[issued[0]] == "job_created"  # never fed: not a second retrain of this file


def test_upload_attempts_are_bounded(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from prediction_one import PredictionOneClient

    real_upload = PredictionOneClient.upload
    calls: list[int] = []

    def never_arrives(self: Any, url: str, body: Any, length: int) -> None:
        calls.append(length)
        raise p1_errors.ServerError("gateway down", http_status=503, endpoint="PUT /upload")

    monkeypatch.setattr(PredictionOneClient, "upload", never_arrives)
    monkeypatch.setenv("UPLOAD_ATTEMPTS", "2")
    event = stack.put("incoming/demo/a.csv", stack.csv_bytes())
    with pytest.raises(p1_errors.ServerError):
        stack.upload(event)
    assert len(calls) == 2
    # The failed attempt left no idempotency record: the retried step starts over.
    monkeypatch.setattr(PredictionOneClient, "upload", real_upload)
    retried = stack.upload(event)
    assert retried["duplicate"] is False


def test_metrics_are_published(stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    stack.upload(stack.put("incoming/demo/a.csv", stack.csv_bytes()))
    metrics = _emf_metrics(capsys.readouterr().out)
    assert metrics.get("FilesAccepted") == 1
    assert metrics.get("RetrainJobsCreated") == 1
    assert metrics.get("BytesUploaded", 0) > 0


def _emf_metrics(output: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            for definition in document["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    value = document[metric["Name"]]
                    found[metric["Name"]] = value[0] if isinstance(value, list) else value
    return found


def test_zip_layout_check_reads_only_the_central_directory(stack: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("train_src/t.csv", stack.csv_bytes(rows=100_000))
        archive.writestr("notes.txt", "no eval data here")
    event = stack.put("incoming/demo/big.zip", buffer.getvalue())
    with pytest.raises(BadZipLayout, match="no evaluation data"):
        stack.upload(event)
