"""The API pages' "Execution Example 2" curl commands, verbatim with the real curl; only the host differs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import finish, make_table

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed"),
]

DOC_HOSTS = ("developer-api.predictionone.sony.biz", "developer-api.easy-predictive-analytics.sony.com")


def curl(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", *args], cwd=cwd, env=env, capture_output=True, timeout=60, check=False
    )


def test_reference_curl_flow_upload_status_download_switch(emulator, tmp_path, curl_env):
    base = emulator.base_url
    data = make_table(rows=150, columns=4)
    (tmp_path / "retrain.csv").write_bytes(data)
    # upload URL page, step 3: a UTF-8 file holding the file name (any UTF-8 name)
    (tmp_path / "param.txt").write_text("再学習データ.csv", encoding="utf-8")

    # upload URL page, step 4
    got = curl(
        ["-o", "response.json", "-H", "x-api-key:demo-key", "-X", "GET", "-G",
         f"{base}/v1/external/retrain_jobs/upload_url", "--data-urlencode", "filename@param.txt"],
        tmp_path, curl_env,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    created = json.loads((tmp_path / "response.json").read_text())
    assert set(created) == {"retrain_job_id", "upload_url"}
    job_id, upload_url = created["retrain_job_id"], created["upload_url"]
    assert emulator.admin.job(job_id)["filename"] == "再学習データ.csv"

    # upload URL page, step 6
    got = curl(["-X", "PUT", "--upload-file", "retrain.csv", upload_url], tmp_path, curl_env)
    assert got.returncode == 0, got.stderr
    job = emulator.admin.job(job_id)
    assert job["upload_size"] == len(data) and job["uploaded"] is True

    # retrain status page, step 3: the status, first while running or already finished, then once finished
    status_args = ["-o", "response.json", "-H", "x-api-key:demo-key", "-X", "GET", "-G",
                   f"{base}/v1/external/retrain_jobs/{job_id}"]  # fmt: skip
    got = curl(status_args, tmp_path, curl_env)
    assert got.returncode == 0, got.stderr
    assert json.loads((tmp_path / "response.json").read_text())["status"] in ("job_running", "job_finished")
    finish(emulator, job_id)
    got = curl(status_args, tmp_path, curl_env)
    status = json.loads((tmp_path / "response.json").read_text())
    assert status["status"] == "job_finished"
    assert isinstance(status["model_id"], int)
    assert status["metadata"] == {"retrain_job_id": job_id}

    # retrain status page, step 5: "curl -G GET {download_url}" - curl takes GET for a host it cannot resolve,
    # then fetches the real URL; only the real URL's output matters.
    got = curl(["-G", "GET", status["download_url"]], tmp_path, curl_env)
    assert got.stdout == emulator.admin.result_bytes(job_id)

    # model switch page, step 3
    got = curl(
        ["-H", "x-api-key:demo-key", "-X", "PUT", f"{base}/v1/external/retrain_jobs/{job_id}/update_model"],
        tmp_path, curl_env,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"metadata": {"retrain_job_id": job_id}}
    assert [s["job_id"] for s in emulator.admin.switches()] == [job_id]


def test_reference_curl_error_lands_in_response_json(emulator, tmp_path, curl_env):
    (tmp_path / "param.txt").write_text("data.csv", encoding="utf-8")
    got = curl(
        ["-o", "response.json", "-H", "x-api-key:xxxx-xxx-xxx-xxxx", "-X", "GET", "-G",
         f"{emulator.base_url}/v1/external/retrain_jobs/upload_url",
         "--data-urlencode", "filename@param.txt"],
        tmp_path, curl_env,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert json.loads((tmp_path / "response.json").read_text()) == {
        "code": 4001000204,
        "error": "PREDA_EXTERNAL_BAD_REQUEST",
        "message": "invalid_api_key.",
    }


@pytest.mark.parametrize("host", DOC_HOSTS)
def test_documented_host_names_are_answered_and_kept_in_urls(emulator, tmp_path, curl_env, host):
    port = emulator.base_url.rsplit(":", 1)[1]
    resolve = ["--resolve", f"{host}:{port}:127.0.0.1"]
    (tmp_path / "param.txt").write_text("data.csv\n", encoding="utf-8")  # a trailing newline, as editors save
    (tmp_path / "data.csv").write_bytes(make_table())
    got = curl(
        [*resolve, "-o", "response.json", "-H", "x-api-key:demo-key", "-X", "GET", "-G",
         f"http://{host}:{port}/v1/external/retrain_jobs/upload_url",
         "--data-urlencode", "filename@param.txt"],
        tmp_path, curl_env,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    created = json.loads((tmp_path / "response.json").read_text())
    assert created["upload_url"].startswith(f"http://{host}:{port}/_storage/upload/")
    assert emulator.admin.job(created["retrain_job_id"])["filename"] == "data.csv"
    got = curl(
        [*resolve, "-X", "PUT", "--upload-file", "data.csv", created["upload_url"]], tmp_path, curl_env
    )
    assert got.returncode == 0, got.stderr
    assert emulator.admin.job(created["retrain_job_id"])["uploaded"] is True


def test_curl_expect_continue_upload_accepted_and_refused_without_body(emulator, api, tmp_path, curl_env):
    data = make_table(rows=40_000, columns=5)  # > 1 MiB
    (tmp_path / "big.csv").write_bytes(data)
    job_id, upload_url = api.new_job("big.csv")
    expect = ["-v", "-H", "Expect: 100-continue", "-X", "PUT", "--upload-file", "big.csv"]
    got = curl([*expect, upload_url.replace("X-Amz-Signature=", "X-Amz-Signature=0")], tmp_path, curl_env)
    assert b"HTTP/1.1 403" in got.stderr and b"100 Continue" not in got.stderr
    assert b"<Code>SignatureDoesNotMatch</Code>" in got.stdout
    got = curl([*expect, upload_url], tmp_path, curl_env)
    assert got.returncode == 0, got.stderr
    assert b"HTTP/1.1 100 Continue" in got.stderr and b"HTTP/1.1 200" in got.stderr
    assert emulator.admin.job(job_id)["upload_size"] == len(data)
