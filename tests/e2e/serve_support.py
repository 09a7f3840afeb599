"""``p1-retrain serve`` as a user runs it: a subprocess whose first stdout line is its JSON, stopped by
SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 120.0
STOP_SECONDS = 60.0


@dataclass
class Served:
    """A running ``p1-retrain serve``: ``first`` is its first stdout line, read as JSON; ``stdout`` and
    ``stderr`` gather every line it writes."""

    process: subprocess.Popen
    first: dict
    stdout: list[str]
    stderr: list[str]
    key: str

    def client(self, service: str):
        """A plain boto3 client of ``service`` at the served stack, with the credentials it printed."""
        return boto3.session.Session(
            aws_access_key_id=self.first["aws_access_key_id"],
            aws_secret_access_key=self.first["aws_secret_access_key"],
            region_name=self.first["region"],
        ).client(service, endpoint_url=self.first["endpoint_url"])

    def terminate(self) -> int:
        """SIGTERM, then the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_SECONDS)


def start_serve(model: str, key: str, job_seconds: float) -> Served:
    """``p1-retrain serve --model MODEL=KEY --job-seconds S``, once it printed its first line."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p1_retrain.cli",
            "serve",
            "--model",
            f"{model}={key}",
            "--job-seconds",
            f"{job_seconds:g}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout: list[str] = []
    stderr: list[str] = []
    got_first = threading.Event()

    def read_stdout() -> None:
        for line in process.stdout:
            stdout.append(line)
            got_first.set()

    threading.Thread(target=read_stdout, daemon=True).start()
    threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True).start()
    if not got_first.wait(START_SECONDS):
        process.kill()
        pytest.fail(f"serve printed nothing in {START_SECONDS:g} s; stderr: {''.join(stderr)}")
    return Served(process, json.loads(stdout[0]), stdout, stderr, key)


def wait_for(condition: Callable[[], Any], seconds: float, what: str, interval: float = 0.2) -> Any:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy (returned)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"{what} not seen within {seconds:g} s")
