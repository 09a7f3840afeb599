"""The emulator is as strict as the service and S3: every query parameter signed, bad framing answered,
bad command lines refused as usage errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.conftest import make_table
from tests.integration.test_emulator_storage import assert_s3_error

COMMAND = Path(sys.executable).parent / "p1-retrain"


@pytest.mark.parametrize(
    "extra",
    [
        "&response-content-type=text%2Fhtml",
        "&x-id=GetObject",
        "&X-Amz-Date=20000101T000000Z",  # a second value of a signed parameter
    ],
)
def test_a_query_parameter_added_to_a_download_url_breaks_its_signature(api, finished_job, extra):
    download_url = api.status(finished_job).json()["download_url"]
    assert api.get(download_url).status_code == 200
    assert_s3_error(api.get(download_url + extra), 403, "SignatureDoesNotMatch")


def test_a_query_parameter_added_to_an_upload_url_breaks_its_signature(emulator, api):
    job_id, upload_url = api.new_job()
    assert_s3_error(api.put(upload_url + "&acl=public-read", make_table()), 403, "SignatureDoesNotMatch")
    assert emulator.admin.job(job_id)["status"] == "job_created"
    assert api.put(upload_url, make_table()).status_code == 200


def _raw(base_url: str, request: bytes) -> bytes:
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and b"}" in answer:
                break
    return answer


@pytest.mark.parametrize("length", ["-5", "abc", "1e3", ""])
def test_admin_routes_answer_400_to_a_bad_content_length(emulator, length):
    request = (
        f"POST /_emulator/clock HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n{{}}"
    ).encode()
    answer = _raw(emulator.base_url, request)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.") and b" 400 " in status_line + b" ", answer[:300]
    assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "invalid port 70000: must be between 0 and 65535"),
        (["--port", "-1"], "invalid port -1"),
        (["--job-seconds", "-5"], "invalid number of seconds '-5': must be 0 or more"),
        (["--model", "a=one", "--model", "a=two"], "--model 'a' given more than once"),
        (["--model", "売上予測=キー"], "--model '売上予測': its KEY must be printable ASCII"),
    ],
)
def test_emulator_options_out_of_range_are_usage_errors(argv, message):
    done = subprocess.run(
        [str(COMMAND), "emulator", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("p1-retrain emulator: error: ") and message in last


@pytest.mark.slow
def test_demo_with_an_unknown_option_prints_the_demo_usage():
    done = subprocess.run(
        [str(COMMAND), "demo", "--bogus"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith("usage: p1-retrain demo ")
    assert done.stderr.strip().splitlines()[-1] == "p1-retrain demo: error: unrecognized arguments: --bogus"
