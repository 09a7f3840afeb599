"""``p1-retrain emulator``: a real process on port 0 prints its real URL, serves, and stops on SIGTERM."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow  # starts processes

COMMAND = Path(sys.executable).parent / "p1-retrain"
URL_LINE = re.compile(rb"listening on (http://127\.0\.0\.1:(\d+))")


def read_until(process: subprocess.Popen[bytes], pattern: re.Pattern[bytes], timeout: float = 30) -> bytes:
    """The child's stdout up to a match of ``pattern``; fails if it exits or stays silent past ``timeout``."""
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not pattern.search(output):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {pattern.pattern!r} within {timeout} s; got {output!r}")
            if selector.select(remaining):
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    raise AssertionError(f"exited ({process.wait()}) before {pattern.pattern!r}: {output!r}")
                output += chunk
    return output


@pytest.fixture
def start_cli():
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [str(COMMAND), "emulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def test_port_zero_prints_the_real_port_and_sigterm_stops(start_cli):
    process = start_cli("--model", "churn=churn-secret-key", "--job-seconds", "0.2")
    output = read_until(process, URL_LINE)
    base_url, port = (group.decode() for group in URL_LINE.search(output).groups())
    assert int(port) > 0
    session = requests.Session()
    session.trust_env = False
    answer = session.get(
        f"{base_url}/v1/external/retrain_jobs/upload_url",
        params={"filename": "a.csv"},
        headers={"x-api-key": "churn-secret-key"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert session.get(f"{base_url}/_emulator/models", timeout=30).json()[0]["name"] == "churn"
    session.close()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    printed = output + stdout + stderr
    assert b"churn" in printed
    assert b"churn-secret-key" not in printed  # keys are never printed
    assert b"X-Amz-Signature" not in printed


def test_default_model_prints_the_public_demo_key_hint(start_cli):
    process = start_cli()
    output = read_until(process, re.compile(rb"try: curl .*\n"))
    assert b"models: demo" in output and b"x-api-key:demo-key" in output
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)
    assert process.returncode == 0


def test_port_in_use_is_a_clear_error(start_cli, emulator):
    port = emulator.base_url.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [str(COMMAND), "emulator", "--port", port], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}".encode() in stderr
