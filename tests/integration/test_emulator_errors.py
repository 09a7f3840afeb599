"""Every documented error row on exactly the endpoints that document it, as JSON; the undocumented rules."""

from __future__ import annotations

import pytest

from tests.integration.conftest import OWN_KEY, Api, error_body, finish

OTHER_KEY = "other-key"


def assert_error(answer, message: str, code: int = 4001000204) -> None:
    assert answer.status_code == int(str(code)[:3]), answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == error_body(message, code)


def call(api: Api, endpoint: str, target: str, api_key) -> object:
    """Call endpoint 1..4 with ``target`` as its job id / process id."""
    if endpoint == "upload_url":
        return api.upload_url("data.csv", api_key)
    if endpoint == "status":
        return api.status(target, api_key)
    if endpoint == "switch":
        return api.switch(target, api_key)
    return api.training(target, api_key)


@pytest.fixture
def targets(emulator, api):
    """A finished job and a finished training process of model ``demo``, per endpoint."""
    job_id = api.uploaded_job()
    finish(emulator, job_id)
    process_id = emulator.admin.create_training("demo", seconds=0)
    return {"upload_url": "", "status": job_id, "switch": job_id, "training": process_id}


ENDPOINTS = ("upload_url", "status", "switch", "training")


# -- rows documented on every endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_key_header_is_invalid_api_key(api, targets, endpoint):
    assert_error(call(api, endpoint, targets[endpoint], None), "invalid_api_key.")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_key_is_invalid_api_key(api, targets, endpoint):
    assert_error(call(api, endpoint, targets[endpoint], "no-such-key"), "invalid_api_key.")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_deactivated_key_is_inactive_credential(emulator, api, targets, endpoint):
    emulator.admin.deactivate_credential("demo-key")
    assert_error(call(api, endpoint, targets[endpoint], "demo-key"), "Inactive_credential.")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_deleted_credential_is_not_found_credential(emulator, api, targets, endpoint):
    emulator.admin.deactivate_credential("demo-key")
    emulator.admin.delete_credential("demo-key")  # a deleted record wins over an inactive one
    assert_error(call(api, endpoint, targets[endpoint], "demo-key"), "Not_found_credential.")


def test_key_header_name_is_case_insensitive(api):
    answer = api.session.get(
        f"{api.base_url}/v1/external/retrain_jobs/upload_url",
        params={"filename": "a.csv"},
        headers={"X-API-KEY": "demo-key"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


# -- endpoint 1: upload_url ----------------------------------------------------------------------------------


def test_upload_url_user_deleted(emulator, api):
    emulator.admin.delete_user("demo")
    assert_error(api.upload_url(), "This user may be deleted.")


def test_upload_url_model_deleted(emulator, api):
    emulator.admin.delete_model("demo")
    assert_error(api.upload_url(), "This model may be deleted.")


def test_upload_url_base_job_deleted(emulator, api):
    (demo,) = emulator.admin.models()
    emulator.admin.delete_job(demo["base_job_id"])
    assert_error(api.upload_url(), "This job may be deleted.")


def test_upload_url_configuration_deleted_is_500(emulator, api):
    emulator.admin.delete_configuration("demo")
    assert_error(api.upload_url(), "Not found configuration_file.", code=5001000201)


@pytest.mark.parametrize("filename", [None, "", "  \n", "\ufeff"])
def test_upload_url_without_filename(api, filename):
    assert_error(api.upload_url(filename), "filename is required.")


def test_upload_url_rows_in_documented_order(emulator, api):
    """user > model > job > configuration: each row shows once the ones before it are cleared."""
    admin = emulator.admin
    (demo,) = admin.models()
    admin.delete_configuration("demo")
    admin.delete_job(demo["base_job_id"])
    admin.delete_model("demo")
    admin.delete_user("demo")
    assert_error(api.upload_url(), "This user may be deleted.")
    assert emulator.admin.jobs() == []


# -- endpoints 2 and 3: status and update_model --------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "job_id"), [("status", "00000000-0000-0000-0000-000000000000"), ("switch", "no-such-job")]
)
def test_unknown_job(api, endpoint, job_id):
    assert_error(call(api, endpoint, job_id, OWN_KEY), "Not found retrain job.")


@pytest.mark.parametrize("endpoint", ["status", "switch"])
def test_another_models_job(emulator, api, targets, endpoint):
    emulator.admin.add_model("other", OTHER_KEY)
    assert_error(call(api, endpoint, targets[endpoint], OTHER_KEY), "Not found retrain job.")
    assert call(api, endpoint, targets[endpoint], OWN_KEY).status_code == 200  # its own model's key does


# The row each endpoint answers for a job once its job, its model or its user is deleted.
DELETED_ROWS = [
    ("status", "job", "This job may be deleted."),
    ("status", "model", "This job may be deleted."),  # a deleted model means a deleted job
    ("status", "user", "Not_found_credential."),  # a deleted user means the credential is gone
    ("switch", "job", "Not found retrain job."),
    ("switch", "model", "Not found classifier."),
    ("switch", "user", "Not_found_credential."),
]


@pytest.mark.parametrize(("endpoint", "deleted", "message"), DELETED_ROWS)
def test_job_with_a_deleted_record(emulator, api, targets, endpoint, deleted, message):
    admin = emulator.admin
    delete = {
        "job": lambda: admin.delete_job(targets[endpoint]),
        "model": lambda: admin.delete_model("demo"),
        "user": lambda: admin.delete_user("demo"),
    }
    delete[deleted]()
    assert_error(call(api, endpoint, targets[endpoint], OWN_KEY), message)


# -- endpoint 3: update_model --------------------------------------------------------------------------------


def test_switch_before_upload_is_not_finished(api):
    job_id, _ = api.new_job()
    assert_error(api.switch(job_id), "Retrain job is not finished.")


def test_switch_while_running_is_not_finished(emulator, api):
    emulator.admin.set_settings(job_seconds=3600)
    job_id = api.uploaded_job()
    assert api.status(job_id).json()["status"] == "job_running"
    assert_error(api.switch(job_id), "Retrain job is not finished.")


def test_switch_of_failed_job_is_not_finished(emulator, api):
    emulator.admin.set_settings(outcome="failed")
    job_id = api.uploaded_job()
    finish(emulator, job_id, "job_failed")
    assert_error(api.switch(job_id), "Retrain job is not finished.")
    assert emulator.admin.switches() == []


# -- endpoint 4: models/results ------------------------------------------------------------------------------


def test_training_user_deleted(emulator, api, targets):
    emulator.admin.delete_user("demo")
    assert_error(api.training(targets["training"]), "This user may be deleted.")


@pytest.mark.parametrize("process_id", [None, "", "no-such-process"])
def test_training_unknown_process(api, process_id):
    assert_error(api.training(process_id), "Not found external_process_id.")


def test_training_of_another_model(emulator, api, targets):
    emulator.admin.add_model("other", OTHER_KEY)
    assert_error(api.training(targets["training"], OTHER_KEY), "Not found external_process_id.")


def test_training_ignores_model_and_configuration_deletion(emulator, api, targets):
    emulator.admin.delete_model("demo")
    emulator.admin.delete_configuration("demo")
    assert api.training(targets["training"]).json()["status"] == "finished"


# -- rows an endpoint does not document never appear there ---------------------------------------------------


def test_model_rows_stay_on_their_endpoints(emulator, api, targets):
    """``This model may be deleted.`` is endpoint 1's only; endpoints 2-4 answer their own rows."""
    emulator.admin.delete_model("demo")
    messages = {endpoint: call(api, endpoint, targets[endpoint], "demo-key").json() for endpoint in ENDPOINTS}
    assert messages["upload_url"]["message"] == "This model may be deleted."
    assert messages["status"]["message"] == "This job may be deleted."
    assert messages["switch"]["message"] == "Not found classifier."
    assert messages["training"]["status"] == "finished"


def test_configuration_row_only_on_upload_url(emulator, api, targets):
    emulator.admin.delete_configuration("demo")
    assert api.status(targets["status"]).status_code == 200
    assert api.switch(targets["switch"]).status_code == 200
    assert_error(api.upload_url(), "Not found configuration_file.", code=5001000201)


# -- HTTP-level answers --------------------------------------------------------------------------------------


def test_unknown_path_is_404_json(api):
    answer = api.get(f"{api.base_url}/v1/external/nothing")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"message": "Not Found"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/v1/external/retrain_jobs/upload_url", "GET"),
        ("DELETE", "/v1/external/retrain_jobs/some-job", "GET"),
        ("GET", "/v1/external/retrain_jobs/some-job/update_model", "PUT"),
        ("PUT", "/v1/external/models/results", "GET"),
        ("GET", "/_storage/upload/some-job", "PUT"),
    ],
)
def test_wrong_method_is_405(api, method, path, allow):
    answer = api.session.request(
        method, f"{api.base_url}{path}", headers={"x-api-key": "demo-key"}, timeout=30
    )
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allow
    assert answer.json() == {"message": "Method Not Allowed"}
