"""Fault injection: each kind on the routes it applies to, reproducibility, counts; admin routes exempt."""

from __future__ import annotations

import threading

import pytest
import requests

from p1_retrain.emulator import EmulatorAdminError
from p1_retrain.emulator.admin_routes import ADMIN, AdminContext
from p1_retrain.emulator.fault_answers import fault_answer
from p1_retrain.emulator.faults import FaultInjector
from p1_retrain.emulator.presign import Signer
from p1_retrain.emulator.state import EmulatorState, Settings
from tests.integration.conftest import finish, make_table

API_ONLY = ["upload_url", "retrain_status", "update_model", "training_status"]


def test_500_has_the_documented_internal_error_body(emulator, api):
    emulator.admin.set_faults(1.0, kinds=["500"], endpoints=["upload_url"])
    answer = api.upload_url()
    assert answer.status_code == 500
    assert answer.json() == {
        "code": 5001000201,
        "error": "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR",
        "message": "Internal server error.",
    }
    assert emulator.admin.jobs() == []  # injected before processing
    assert emulator.admin.fault_counts() == {"500": 1}


def test_502_is_an_html_gateway_page(emulator, api):
    emulator.admin.set_faults(1.0, kinds=["502"])
    answer = api.status("any")
    assert answer.status_code == 502
    assert answer.headers["Content-Type"] == "text/html"
    assert "<h1>502 Bad Gateway</h1>" in answer.text


def test_503_json_on_api_xml_on_storage(emulator, api):
    job_id, upload_url = api.new_job()
    emulator.admin.set_faults(1.0, kinds=["503"])
    assert api.status(job_id).status_code == 503
    assert api.status(job_id).json() == {"message": "Service Unavailable"}
    answer = api.put(upload_url, make_table())
    assert answer.status_code == 503 and "<Code>SlowDown</Code>" in answer.text
    assert emulator.admin.job(job_id)["uploaded"] is False


def test_429_says_when_to_retry(emulator, api):
    emulator.admin.set_faults(1.0, kinds=["429"], endpoints=["retrain_status"])
    answer = api.status("any")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"
    assert api.upload_url().status_code == 200  # other endpoints untouched


def test_reset_drops_the_connection_before_processing(emulator, api):
    emulator.admin.set_faults(1.0, kinds=["reset"], endpoints=["upload_url"])
    with pytest.raises(requests.ConnectionError):
        api.upload_url()
    emulator.admin.clear_faults()
    assert emulator.admin.jobs() == []
    assert api.upload_url().status_code == 200
    (entry, _) = emulator.admin.requests_log()
    assert (entry["endpoint"], entry["status"], entry["fault"]) == ("upload_url", None, "reset")


def test_slow_answer_trips_a_read_timeout_then_arrives(emulator, api):
    emulator.admin.set_faults(1.0, kinds=["slow"], endpoints=["upload_url"], slow_seconds=0.5)
    with pytest.raises(requests.ReadTimeout):
        api.session.get(
            f"{api.base_url}/v1/external/retrain_jobs/upload_url",
            params={"filename": "a.csv"},
            headers={"x-api-key": "demo-key"},
            timeout=(5, 0.1),
        )
    answer = api.upload_url()  # a patient client gets the answer; the slow request was processed too
    assert answer.status_code == 200
    assert emulator.admin.fault_counts() == {"slow": 2}


def test_expired_url_fault_on_storage_only(emulator, api, finished_job):
    emulator.admin.set_faults(1.0, kinds=["expired_url"])
    status = api.status(finished_job)
    assert status.status_code == 200  # not an API fault
    answer = api.get(status.json()["download_url"])
    assert answer.status_code == 403
    assert "<Message>Request has expired</Message>" in answer.text
    emulator.admin.clear_faults()
    assert api.get(api.status(finished_job).json()["download_url"]).status_code == 200


def test_lost_answer_stores_the_upload_then_resets(emulator, api):
    job_id, upload_url = api.new_job()
    data = make_table()
    emulator.admin.set_faults(1.0, kinds=["lost_answer"])
    with pytest.raises(requests.ConnectionError):
        api.put(upload_url, data)
    emulator.admin.clear_faults()
    assert api.status(job_id).json()["status"] in ("job_running", "job_finished")  # lost answer: check first
    assert emulator.admin.job(job_id)["upload_size"] == len(data)
    assert api.put(upload_url, data).status_code == 409
    assert emulator.admin.fault_counts() == {"lost_answer": 1}


def test_lost_answer_never_hits_api_routes(emulator, api):
    emulator.admin.set_faults(1.0, kinds=["lost_answer", "expired_url"], endpoints=API_ONLY)
    assert api.upload_url().status_code == 200
    assert emulator.admin.fault_counts() == {}


def test_admin_routes_are_never_faulted(emulator, api):
    emulator.admin.set_faults(1.0)  # every kind, every endpoint
    for _ in range(5):
        assert emulator.admin.jobs() == []
        assert emulator.admin.health()


def test_same_seed_same_faults(emulator, api):
    def run() -> list[int | None]:
        statuses = []
        for _ in range(30):
            statuses.append(api.status("any").status_code)
        return statuses

    emulator.admin.set_faults(0.5, seed=7, kinds=["500", "503", "429"])
    first = run()
    emulator.admin.set_faults(0.5, seed=7, kinds=["500", "503", "429"])
    assert run() == first
    assert {500, 503, 429} <= set(first) and 400 in first  # faults and real answers (unknown job) mixed
    counts = emulator.admin.fault_counts()
    assert sum(counts.values()) == 2 * sum(1 for status in first if status != 400)


def test_fault_rate_zero_and_clear(emulator, api):
    emulator.admin.set_faults(0.0, kinds=["500"])
    assert api.upload_url().status_code == 200
    emulator.admin.set_faults(1.0, kinds=["500"])
    assert api.upload_url().status_code == 500
    emulator.admin.clear_faults()
    assert emulator.admin.faults() is None
    assert api.upload_url().status_code == 200


def test_requests_log_records_faults_without_secrets(emulator, api):
    job_id, upload_url = api.new_job()
    emulator.admin.set_faults(1.0, kinds=["503"], endpoints=["upload"])
    api.put(upload_url, make_table())
    log = emulator.admin.requests_log()
    assert [(e["method"], e["endpoint"], e["status"], e["fault"]) for e in log] == [
        ("GET", "upload_url", 200, None),
        ("PUT", "upload", 503, "503"),
    ]
    assert log[1]["path"] == f"/_storage/upload/{job_id}"
    assert "demo-key" not in str(log) and "X-Amz" not in str(log)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"rate": 1.5}, "rate must be a number from 0 to 1"),
        ({"rate": 0.1, "kinds": ["teapot"]}, "unknown fault kinds ['teapot']"),
        ({"rate": 0.1, "endpoints": ["admin"]}, "unknown endpoints ['admin']"),
        ({"rate": 0.1, "slow_seconds": 0}, "slow_seconds must be a positive number"),
    ],
)
def test_fault_settings_are_validated(emulator, arguments, problem):
    with pytest.raises(EmulatorAdminError) as caught:
        emulator.admin.set_faults(**arguments)
    assert caught.value.status == 400 and problem in caught.value.message


def test_faults_do_not_break_a_patient_client(emulator, api):
    """At a high rate, retrying each call until it answers still completes the whole flow."""
    emulator.admin.set_faults(0.6, seed=3, kinds=["500", "502", "503", "429", "reset"])

    def retry(call):
        for _ in range(200):
            try:
                answer = call()
            except requests.ConnectionError:
                continue
            if answer.status_code < 500 and answer.status_code != 429:
                return answer
        raise AssertionError("no answer after 200 tries")

    created = retry(api.upload_url).json()
    assert retry(lambda: api.put(created["upload_url"], make_table())).status_code == 200
    finish(emulator, created["retrain_job_id"])
    status = retry(lambda: api.status(created["retrain_job_id"])).json()
    assert retry(lambda: api.get(status["download_url"])).content[:2] == b"PK"
    assert retry(lambda: api.switch(created["retrain_job_id"])).status_code == 200
    assert sum(emulator.admin.fault_counts().values()) > 0


def test_lost_answer_is_not_applied_to_a_refused_upload(emulator, api):
    _, upload_url = api.new_job()
    emulator.admin.set_faults(1.0, kinds=["lost_answer"])
    answer = api.put(upload_url.replace("X-Amz-Signature=", "X-Amz-Signature=00"), make_table())
    assert answer.status_code == 403
    assert emulator.admin.fault_counts() == {}
    assert emulator.admin.requests_log()[-1]["fault"] is None


@pytest.mark.parametrize(
    ("kind", "storage", "status", "content_type"),
    [
        ("500", False, 500, "application/json"),
        ("500", True, 500, "application/xml"),
        ("502", False, 502, "text/html"),
        ("502", True, 502, "text/html"),
        ("503", False, 503, "application/json"),
        ("503", True, 503, "application/xml"),
        ("429", False, 429, "application/json"),
        ("429", True, 429, "application/xml"),
        ("expired_url", True, 403, "application/xml"),
    ],
)
def test_fault_answers_without_a_server(kind, storage, status, content_type):
    answer = fault_answer(kind, storage, {"X-Amz-Expires": "600"}, 1_700_000_000.0)
    headers = dict(answer.headers)
    assert (answer.status, answer.content_type) == (status, content_type)
    assert ("x-amzn-RequestId" in headers) == (content_type == "application/json")
    assert headers.get("Retry-After") == ("1" if kind == "429" else None)
    if kind == "expired_url":
        assert b"Request has expired" in answer.body and b"<X-Amz-Expires>600<" in answer.body


@pytest.mark.parametrize("kind", ["reset", "slow", "lost_answer"])
def test_kinds_without_an_answer_of_their_own_are_refused(kind):
    with pytest.raises(ValueError, match=kind):
        fault_answer(kind, True, {}, 0.0)


def test_admin_actions_need_only_their_context(tmp_path):
    state = EmulatorState({"demo": "k"}, Settings(), tmp_path, Signer.random())
    context = AdminContext(state, FaultInjector(), threading.Event())
    put_faults, params, _ = ADMIN.match("PUT", "/_emulator/faults")
    assert put_faults is not None
    status, plan = put_faults(context, params, {}, {"rate": 0.5, "seed": 3, "kinds": ["503"]})
    assert status == 200 and plan["kinds"] == ["503"]
    assert context.faults.plan is not None and context.faults.plan.seed == 3
    reset, params, _ = ADMIN.match("POST", "/_emulator/reset")
    assert reset is not None
    assert reset(context, params, {}, {}) == (200, {"reset": True})
    assert context.faults.plan is None
