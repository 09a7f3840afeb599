"""The client against the emulator over real HTTP: happy paths, both hosts, every documented error row."""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile

import pytest
from prediction_one import (
    DOCUMENTED_BASE_URLS,
    ConfigurationFileNotFound,
    JobState,
    PredictionOneClient,
    UploadRejected,
    build_train_eval_zip,
)
from prediction_one import errors as p1_errors

from tests.integration.client_support import KEY, fast_settings
from tests.testdata import table


def csv_bytes(rows: int = 120, columns: int = 3) -> bytes:
    return table(rows, header=[f"c{i}" for i in range(columns)])


@pytest.fixture
def client(emulator):
    with PredictionOneClient(KEY, fast_settings(emulator.base_url)) as api:
        yield api


def finished_job(
    client: PredictionOneClient, emulator, data: bytes | None = None, name: str = "d.csv"
) -> str:
    data = data if data is not None else csv_bytes()
    target = client.get_upload_url(name)
    client.upload(target.upload_url, io.BytesIO(data), len(data))
    emulator.admin.advance_clock(1.0)  # past job_seconds; the job still waits for its input check
    emulator.admin.wait_job(target.retrain_job_id, "job_finished", timeout=30)
    return target.retrain_job_id


def api_requests(emulator, endpoint: str | None = None, count: int = 0, timeout: float = 10.0) -> list[dict]:
    """The emulator's log entries (of one endpoint), once there are at least ``count``: it writes an entry
    just after sending its answer, so a client may have its answer before the entry exists."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [r for r in emulator.admin.requests_log() if endpoint is None or r["endpoint"] == endpoint]
        if len(entries) >= count or time.monotonic() >= deadline:
            return entries
        threading.Event().wait(0.02)


def test_csv_retrain_happy_path(client, emulator):
    data = csv_bytes()
    target = client.get_upload_url("学習 データ.csv")
    assert client.get_retrain_job(target.retrain_job_id).status == "job_created"
    client.upload(target.upload_url, io.BytesIO(data), len(data))
    [upload] = emulator.admin.uploads()
    assert (upload["filename"], upload["size"]) == ("学習 データ.csv", len(data))
    emulator.admin.wait_job(target.retrain_job_id, "job_finished", timeout=30)

    job = client.get_retrain_job(target.retrain_job_id)
    assert job.state is JobState.FINISHED and job.status == "job_finished"
    assert isinstance(job.model_id, int) and job.download_url
    sink = io.BytesIO()
    assert client.download(job.download_url, sink) == len(sink.getvalue())
    assert sink.getvalue() == emulator.admin.result_bytes(target.retrain_job_id)

    client.update_model(target.retrain_job_id)
    client.update_model(target.retrain_job_id)  # assumed: a second switch succeeds again
    assert [s["job_id"] for s in emulator.admin.switches()] == [target.retrain_job_id] * 2


def test_train_eval_zip_happy_path(client, emulator, tmp_path):
    archive = tmp_path / "retrain.zip"
    with archive.open("wb") as out:
        build_train_eval_zip(
            io.BytesIO(csv_bytes(150)), io.BytesIO(csv_bytes(110)), out, "train.csv", "eval.csv"
        )
    target = client.get_upload_url(archive.name)
    with archive.open("rb") as body:
        client.upload(target.upload_url, body, archive.stat().st_size)
    emulator.admin.wait_job(target.retrain_job_id, ["job_finished", "job_failed"], timeout=30)
    job = client.get_retrain_job(target.retrain_job_id)
    assert job.state is JobState.FINISHED, job.message
    parts: list[bytes] = []
    client.download(job.download_url, parts.append)
    with zipfile.ZipFile(io.BytesIO(b"".join(parts))) as results:
        assert results.namelist()


def test_invalid_data_fails_the_job_with_its_message(client, emulator):
    data = csv_bytes(rows=5)
    target = client.get_upload_url("small.csv")
    client.upload(target.upload_url, data, len(data))
    emulator.admin.wait_job(target.retrain_job_id, ["job_failed", "job_finished"], timeout=30)
    job = client.get_retrain_job(target.retrain_job_id)
    assert job.state is JobState.FAILED
    assert job.message and "rows" in job.message


def test_training_status_happy_path(client, emulator):
    process_id = emulator.admin.create_training("demo", seconds=0.0, outcome="finished")
    emulator.admin.wait_training(process_id, "finished", timeout=30)
    result = client.get_training_result(process_id)
    assert result.state is JobState.FINISHED
    assert result.created_datetime and result.updated_datetime and result.result_url
    sink = io.BytesIO()
    client.download(result.result_url, sink)
    assert sink.getvalue() == emulator.admin.result_bytes(process_id)

    failing = emulator.admin.create_training("demo", seconds=0.0, outcome="failed")
    emulator.admin.wait_training(failing, "failed", timeout=30)
    assert client.get_training_result(failing).state is JobState.FAILED


def test_a_second_upload_is_rejected(client, emulator):
    data = csv_bytes()
    target = client.get_upload_url("d.csv")
    client.upload(target.upload_url, data, len(data))
    with pytest.raises(UploadRejected):
        client.upload(target.upload_url, data, len(data))


@pytest.mark.parametrize("documented", DOCUMENTED_BASE_URLS)
def test_either_documented_host_reaches_the_documented_paths(emulator, monkeypatch, documented):
    """Resolve the documented host name to the emulator, so the request carries the real Host header
    and the path the client builds for it (plain HTTP: the emulator has no certificate)."""
    host = documented.removeprefix("https://")
    port = int(emulator.base_url.rsplit(":", 1)[1])
    real_getaddrinfo = socket.getaddrinfo

    def resolve(name, *args, **kwargs):
        return real_getaddrinfo("127.0.0.1" if name == host else name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with PredictionOneClient(KEY, fast_settings(f"http://{host}:{port}")) as api:
        data = csv_bytes()
        target = api.get_upload_url("d.csv")
        assert target.upload_url.startswith(f"http://{host}:{port}/")  # built from our Host header
        api.upload(target.upload_url, data, len(data))
        emulator.admin.wait_job(target.retrain_job_id, "job_finished", timeout=30)
        assert api.get_retrain_job(target.retrain_job_id).state is JobState.FINISHED
        api.update_model(target.retrain_job_id)
        api.get_training_result(emulator.admin.create_training("demo"))
    job = target.retrain_job_id
    assert [(r["method"], r["path"]) for r in api_requests(emulator, count=5)] == [
        ("GET", "/v1/external/retrain_jobs/upload_url"),
        ("PUT", f"/_storage/upload/{job}"),
        ("GET", f"/v1/external/retrain_jobs/{job}"),
        ("PUT", f"/v1/external/retrain_jobs/{job}/update_model"),
        ("GET", "/v1/external/models/results"),
    ]


# Every documented row on every endpoint that documents it. Each case prepares the emulator, then calls.


def _break_key(how: str):
    def prepare(emulator, client):
        if how == "unknown":
            return PredictionOneClient("not-a-key", client.settings)
        getattr(emulator.admin, f"{how}_credential")(KEY)
        return client

    return prepare


def _call(endpoint: str, emulator, client, job_id: str, process_id: str):
    if endpoint == "upload_url":
        return client.get_upload_url("d.csv")
    if endpoint == "retrain_status":
        return client.get_retrain_job(job_id)
    if endpoint == "update_model":
        return client.update_model(job_id)
    return client.get_training_result(process_id)


CREDENTIAL_ROWS = [
    ("unknown", "ApiKeyInvalid", "invalid_api_key."),
    ("deactivate", "CredentialInactive", "Inactive_credential."),
    ("delete", "CredentialNotFound", "Not_found_credential."),
]


@pytest.mark.parametrize("endpoint", ["upload_url", "retrain_status", "update_model", "training_status"])
@pytest.mark.parametrize(("how", "name", "message"), CREDENTIAL_ROWS)
def test_credential_rows_on_every_endpoint(client, emulator, endpoint, how, name, message):
    job_id = client.get_upload_url("d.csv").retrain_job_id  # the key is checked before the job
    process_id = emulator.admin.create_training("demo")
    caller = _break_key(how)(emulator, client)
    before = len(api_requests(emulator, endpoint))
    with pytest.raises(getattr(p1_errors, name)) as caught:
        _call(endpoint, emulator, caller, job_id, process_id)
    assert caught.value.api_message == message and caught.value.code == 4001000204
    assert caught.value.http_status == 400
    assert [r["status"] for r in api_requests(emulator, endpoint, before + 1)[before:]] == [
        400
    ]  # not retried


def test_upload_url_rows(client, emulator):
    base_job = emulator.admin.models()[0]["base_job_id"]
    emulator.admin.delete_job(base_job)
    with pytest.raises(p1_errors.JobDeleted):
        client.get_upload_url("d.csv")
    emulator.admin.delete_model("demo")
    with pytest.raises(p1_errors.ModelDeleted):
        client.get_upload_url("d.csv")
    emulator.admin.delete_user("demo")
    with pytest.raises(p1_errors.UserDeleted) as caught:
        client.get_upload_url("d.csv")
    assert caught.value.describe() == (
        "This user may be deleted. (4001000204 PREDA_EXTERNAL_BAD_REQUEST): "
        "the user information may have been deleted"
    )
    assert [r["status"] for r in api_requests(emulator, "upload_url", 3)] == [400] * 3


def test_configuration_file_row_is_retried_then_named(client, emulator):
    emulator.admin.delete_configuration("demo")
    with pytest.raises(ConfigurationFileNotFound) as caught:
        client.get_upload_url("d.csv")
    assert caught.value.transient and caught.value.http_status == 500
    assert "Not found configuration_file. (5001000201 PREDA_EXTERNAL_INTERNAL_SERVER_ERROR)" in str(
        caught.value
    )
    assert [r["status"] for r in api_requests(emulator, "upload_url", 3)] == [500] * 3  # 1 + max_retries


def test_retrain_status_rows(client, emulator):
    with pytest.raises(p1_errors.RetrainJobNotFound):
        client.get_retrain_job("no-such-job")
    job_id = finished_job(client, emulator)
    emulator.admin.delete_job(job_id)
    with pytest.raises(p1_errors.JobDeleted):
        client.get_retrain_job(job_id)


def test_update_model_rows(client, emulator):
    with pytest.raises(p1_errors.RetrainJobNotFound):
        client.update_model("no-such-job")
    created = client.get_upload_url("d.csv").retrain_job_id
    with pytest.raises(p1_errors.RetrainJobNotFinished) as caught:
        client.update_model(created)
    assert caught.value.describe().startswith("Retrain job is not finished. (4001000204")
    job_id = finished_job(client, emulator)
    emulator.admin.delete_model("demo")
    with pytest.raises(p1_errors.ClassifierNotFound):
        client.update_model(job_id)
    assert emulator.admin.switches() == []
    assert [r["status"] for r in api_requests(emulator, "update_model", 3)] == [400] * 3


def test_training_status_rows(client, emulator):
    process_id = emulator.admin.create_training("demo")
    emulator.admin.delete_user("demo")
    with pytest.raises(p1_errors.UserDeleted):
        client.get_training_result(process_id)
