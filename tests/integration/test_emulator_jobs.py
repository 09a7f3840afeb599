"""Job progress, outcomes, settings, switching twice, results files, training processes (endpoint 4)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from p1_retrain.emulator import EmulatorAdminError
from p1_retrain.emulator.presign import Signer
from p1_retrain.emulator.state import EmulatorState, Settings
from p1_retrain.emulator.validation import ValidationResult
from tests.integration.conftest import finish, make_table


def test_job_statuses_over_time(emulator, api):
    emulator.admin.set_settings(job_seconds=60)
    job_id, upload_url = api.new_job()
    assert api.status(job_id).json() == {"status": "job_created", "metadata": {"retrain_job_id": job_id}}
    assert api.put(upload_url, make_table()).status_code == 200
    assert api.status(job_id).json() == {"status": "job_running", "metadata": {"retrain_job_id": job_id}}
    emulator.admin.advance_clock(30)
    assert api.status(job_id).json()["status"] == "job_running"
    emulator.admin.advance_clock(31)
    emulator.admin.wait_job(job_id, "job_finished", timeout=30)
    body = api.status(job_id).json()
    assert body["status"] == "job_finished"
    assert isinstance(body["model_id"], int) and body["model_id"] > 0
    assert body["download_url"].startswith(f"{emulator.base_url}/_storage/results/{job_id}/")
    assert body["metadata"] == {"retrain_job_id": job_id}


def test_jobs_finish_by_real_time_too(emulator, api):
    job_id = api.uploaded_job()  # job_seconds=0.5: wait_job wakes when the job is due, no polling
    assert emulator.admin.wait_job(job_id, "job_finished", timeout=30)["status"] == "job_finished"


def test_failed_outcome_with_message(emulator, api):
    emulator.admin.set_settings(outcome="failed", failure_message="Training diverged.")
    job_id = api.uploaded_job()
    finish(emulator, job_id, "job_failed")
    body = api.status(job_id).json()
    assert body == {
        "status": "job_failed",
        "message": "Training diverged.",
        "metadata": {"retrain_job_id": job_id},
    }


def test_never_outcome_stays_running(emulator, api):
    emulator.admin.set_settings(outcome="never")
    job_id = api.uploaded_job()
    emulator.admin.wait_job(job_id, "job_running", timeout=30)
    emulator.admin.advance_clock(10**6)
    with pytest.raises(EmulatorAdminError, match="still 'job_running'"):
        emulator.admin.wait_job(job_id, "job_finished", timeout=0)
    assert api.status(job_id).json()["status"] == "job_running"


def test_per_model_outcome_and_settings_fixed_at_upload(emulator, api):
    admin = emulator.admin
    admin.add_model("churn", "churn-key")
    admin.set_settings(outcome="failed", model="churn")
    assert admin.settings("churn")["outcome"] == "failed"
    assert admin.settings()["outcome"] == "finished"
    demo_job = api.uploaded_job()
    churn_job = api.uploaded_job(api_key="churn-key")
    admin.set_settings(outcome="finished", model="churn")  # too late for the job already uploaded
    finish(emulator, demo_job)
    admin.wait_job(churn_job, "job_failed", timeout=30)
    assert api.status(churn_job, "churn-key").json()["message"] == "Retraining failed."


def test_settings_are_validated(emulator):
    for bad in ({"outcome": "maybe"}, {"job_seconds": -1}, {"upload_url_ttl": 0}):
        with pytest.raises(EmulatorAdminError, match=next(iter(bad))):
            emulator.admin.set_settings(**bad)
    with pytest.raises(EmulatorAdminError, match="unknown model"):
        emulator.admin.set_settings(outcome="failed", model="nobody")


def test_switch_is_repeatable_and_recorded(emulator, api, finished_job):
    model_id = api.status(finished_job).json()["model_id"]
    for _ in range(2):
        answer = api.switch(finished_job)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == {"metadata": {"retrain_job_id": finished_job}}
    switches = emulator.admin.switches()
    assert [(s["job_id"], s["model"], s["model_id"]) for s in switches] == [
        (finished_job, "demo", model_id)
    ] * 2
    assert emulator.admin.job(finished_job)["switch_count"] == 2
    assert emulator.admin.models()[0]["published_model_id"] == model_id


def test_model_ids_differ_per_job(emulator, api):
    first, second = api.uploaded_job(), api.uploaded_job()
    finish(emulator, first)
    emulator.admin.wait_job(second, "job_finished", timeout=30)
    assert api.status(first).json()["model_id"] != api.status(second).json()["model_id"]


def test_results_zip_is_small_metrics_and_deterministic(emulator, api, finished_job):
    download_url = api.status(finished_job).json()["download_url"]
    data = api.get(download_url).content
    assert data == emulator.admin.result_bytes(finished_job) == api.get(download_url).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["evaluation.csv", "feature_importance.csv", "metrics.json"]
        metrics = json.loads(archive.read("metrics.json"))
    assert metrics["id"] == finished_job and metrics["model"] == "demo"
    assert metrics["data"] == [{"name": "data.csv", "rows": 120, "columns": 3}]
    assert 0 < metrics["accuracy"] < 1


def test_results_depend_on_the_job(emulator, api):
    first, second = api.uploaded_job(), api.uploaded_job()
    finish(emulator, first)
    emulator.admin.wait_job(second, "job_finished", timeout=30)
    assert emulator.admin.result_bytes(first) != emulator.admin.result_bytes(second)


def test_training_process_runs_then_finishes_with_result_url(emulator, api):
    process_id = emulator.admin.create_training("demo", seconds=60)
    running = api.training(process_id).json()
    assert running["status"] == "running" and "result_url" not in running
    assert set(running) == {"status", "created_datetime", "updated_datetime"}
    datetime.fromisoformat(running["created_datetime"])
    emulator.admin.advance_clock(61)
    finished = api.training(process_id).json()
    assert finished["status"] == "finished"
    assert finished["created_datetime"] == running["created_datetime"]
    assert finished["updated_datetime"] > finished["created_datetime"]
    data = api.get(finished["result_url"]).content
    assert data == emulator.admin.result_bytes(process_id)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert json.loads(archive.read("metrics.json"))["kind"] == "training"


def test_training_failed_and_wait(emulator, api):
    process_id = emulator.admin.create_training("demo", seconds=0, outcome="failed")
    assert emulator.admin.wait_training(process_id, ("finished", "failed"), timeout=30)["status"] == "failed"
    assert api.training(process_id).json()["status"] == "failed"
    assert "result_url" not in api.training(process_id).json()


def test_training_result_file_can_be_set(emulator, api, tmp_path):
    process_id = emulator.admin.create_training("demo")
    path = tmp_path / "train.zip"
    path.write_bytes(b"PK\x05\x06" + bytes(18))
    emulator.admin.set_result_file(process_id, str(path))
    assert api.get(api.training(process_id).json()["result_url"]).content == path.read_bytes()


def test_create_training_checks_its_input(emulator):
    with pytest.raises(EmulatorAdminError, match="unknown model"):
        emulator.admin.create_training("nobody")
    with pytest.raises(EmulatorAdminError, match="outcome"):
        emulator.admin.create_training("demo", outcome="sometimes")


def test_admin_job_view(emulator, api):
    job_id, _ = api.new_job("売上.csv")
    (job,) = emulator.admin.jobs()
    assert job["id"] == job_id and job["model"] == "demo" and job["filename"] == "売上.csv"
    assert (job["status"], job["uploaded"], job["upload_size"], job["upload_sha256"]) == (
        "job_created",
        False,
        None,
        None,
    )
    assert job["switch_count"] == 0
    assert datetime.fromisoformat(job["created"]) <= datetime.fromisoformat(job["updated"])


def test_reset_restores_the_start(emulator, api, finished_job):
    emulator.admin.add_model("extra", "extra-key")
    emulator.admin.set_settings(outcome="failed")
    emulator.admin.set_faults(0.5, kinds=["503"])
    emulator.admin.reset()
    assert (
        emulator.admin.jobs() == [] and emulator.admin.uploads() == [] and emulator.admin.requests_log() == []
    )
    assert [m["name"] for m in emulator.admin.models()] == ["demo"]
    assert emulator.admin.settings()["outcome"] == "finished"
    assert emulator.admin.faults() is None
    assert api.status(finished_job).json()["message"] == "Not found retrain job."
    assert api.uploaded_job()


def test_admin_refusals_name_the_problem(emulator):
    admin = emulator.admin
    with pytest.raises(EmulatorAdminError, match="exists") as caught:
        admin.add_model("demo", "fresh-key")
    assert caught.value.status == 409
    with pytest.raises(EmulatorAdminError, match="already belongs to model 'demo'"):
        admin.add_model("second", "demo-key")
    with pytest.raises(EmulatorAdminError, match="no model has that API key") as caught:
        admin.deactivate_credential("never-issued")
    assert caught.value.status == 404
    assert "never-issued" not in str(caught.value)
    with pytest.raises(EmulatorAdminError, match="unknown job"):
        admin.delete_job("nope")
    with pytest.raises(EmulatorAdminError, match="unknown model"):
        admin.delete_user("nope")
    with pytest.raises(EmulatorAdminError, match="unknown statuses"):
        admin.wait_job("nope", "done")
    answer = admin._session().get(f"{emulator.base_url}/_emulator/nothing", timeout=30)
    assert answer.status_code == 404


def test_job_cannot_finish_before_its_input_check(tmp_path: Path):
    """In-process: with the check still pending, a job past its end stays running; the check decides."""
    state = EmulatorState({"demo": "k"}, Settings(job_seconds=1.0), tmp_path, Signer.random())
    for verdict, expected in (
        (ValidationResult(None), "job_finished"),
        (ValidationResult("bad"), "job_failed"),
    ):
        job_id = state.create_job("k", "a.csv", "http://h")["retrain_job_id"]
        partial = state.begin_upload(job_id)
        partial.write_bytes(b"a,b\n")
        assert state.complete_upload(job_id, partial, 4, "0" * 64) is not None
        state.advance_clock(100)
        assert state.job_status("k", job_id, "http://h")["status"] == "job_running"
        state.finish_validation(job_id, verdict)
        assert state.job_status("k", job_id, "http://h")["status"] == expected
