"""``p1-retrain serve`` as a user runs it: a subprocess, plain boto3 through its endpoint, SIGTERM."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from p1_retrain.local.data import synthetic_csv

pytestmark = pytest.mark.slow  # starts processes

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 120.0
RUN_SECONDS = 90.0


class Served:
    def __init__(self, process: subprocess.Popen, first: dict, stderr: list[str], key: str) -> None:
        self.process = process
        self.first = first
        self.stderr = stderr
        self.key = key

    def client(self, service: str):
        return boto3.session.Session(
            aws_access_key_id=self.first["aws_access_key_id"],
            aws_secret_access_key=self.first["aws_secret_access_key"],
            region_name=self.first["region"],
        ).client(service, endpoint_url=self.first["endpoint_url"])


def _serve() -> Served:
    key = f"churn-{secrets.token_hex(8)}"
    process = subprocess.Popen(
        [sys.executable, "-m", "p1_retrain.cli", "serve", "--model", f"churn={key}", "--job-seconds", "0.5"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    first: list[str] = []
    got_first = threading.Event()

    def read_stdout() -> None:
        for line in process.stdout:
            first.append(line)
            got_first.set()

    def read_stderr() -> None:
        lines.extend(process.stderr)

    for target in (read_stdout, read_stderr):
        threading.Thread(target=target, daemon=True).start()
    if not got_first.wait(START_SECONDS):
        process.kill()
        pytest.fail(f"serve printed nothing in {START_SECONDS:g} s; stderr: {''.join(lines)}")
    return Served(process, json.loads(first[0]), lines, key)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} not seen within {seconds:g} s")


def _terminate(served: Served) -> int:
    served.process.send_signal(signal.SIGTERM)
    return served.process.wait(timeout=60)


def test_a_file_put_with_plain_boto3_is_retrained_and_archived():
    served = _serve()
    try:
        first = served.first
        assert set(first) == {
            "endpoint_url",
            "region",
            "stack_name",
            "bucket",
            "aws_access_key_id",
            "aws_secret_access_key",
            "state_machine_arns",
            "api_base_url",
        }
        assert first["endpoint_url"].startswith("http://127.0.0.1:")
        assert "RetrainStateMachine" in first["state_machine_arns"]
        s3 = served.client("s3")
        s3.put_object(Bucket=first["bucket"], Key="incoming/churn/mine.csv", Body=synthetic_csv(1))

        def summaries():
            listed = s3.list_objects_v2(Bucket=first["bucket"], Prefix="results/churn/").get("Contents", [])
            return [item["Key"] for item in listed if item["Key"].endswith("/summary.json")]

        (summary_key,) = _wait_for(summaries, RUN_SECONDS, "results/churn/<job>/summary.json")
        summary = json.loads(s3.get_object(Bucket=first["bucket"], Key=summary_key)["Body"].read())
        assert summary["source"]["key"] == "incoming/churn/mine.csv"
        assert s3.head_object(Bucket=first["bucket"], Key=summary["result"]["key"])["ContentLength"] > 0
        sfn = served.client("stepfunctions")
        machine = first["state_machine_arns"]["RetrainStateMachine"]

        def statuses():
            listed = sfn.list_executions(stateMachineArn=machine)["executions"]
            found = [item["status"] for item in listed]
            return found if "RUNNING" not in found else None

        assert _wait_for(statuses, RUN_SECONDS, "the execution's end") == ["SUCCEEDED"]
    finally:
        code = _terminate(served)
    output = json.dumps(served.first) + "".join(served.stderr)
    assert code == 0, output
    assert "incoming/churn/mine.csv: SUCCEEDED" in output
    assert served.key not in output


def test_sigterm_stops_everything_it_started():
    served = _serve()
    s3 = served.client("s3")
    s3.put_object(Bucket=served.first["bucket"], Key="incoming/churn/stop.csv", Body=synthetic_csv(2))
    sfn = served.client("stepfunctions")
    machine = served.first["state_machine_arns"]["RetrainStateMachine"]
    _wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], RUN_SECONDS, "an execution")
    workers = _wait_for(lambda: _descendants(served.process.pid), RUN_SECONDS, "a function worker")

    code = _terminate(served)

    assert code == 0, "".join(served.stderr)
    assert [pid for pid in workers if _alive(pid)] == []
