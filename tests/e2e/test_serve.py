"""``p1-retrain serve`` as a user runs it: a subprocess, plain boto3 through its endpoint, SIGTERM."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from p1_retrain.local.data import synthetic_csv
from tests.e2e.serve_support import Served, start_serve, wait_for

pytestmark = pytest.mark.slow  # starts processes

RUN_SECONDS = 90.0


def _serve() -> Served:
    return start_serve("churn", f"churn-{secrets.token_hex(8)}", job_seconds=0.5)


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

        (summary_key,) = wait_for(summaries, RUN_SECONDS, "results/churn/<job>/summary.json")
        summary = json.loads(s3.get_object(Bucket=first["bucket"], Key=summary_key)["Body"].read())
        assert summary["source"]["key"] == "incoming/churn/mine.csv"
        assert s3.head_object(Bucket=first["bucket"], Key=summary["result"]["key"])["ContentLength"] > 0
        sfn = served.client("stepfunctions")
        machine = first["state_machine_arns"]["RetrainStateMachine"]

        def statuses():
            listed = sfn.list_executions(stateMachineArn=machine)["executions"]
            found = [item["status"] for item in listed]
            return found if "RUNNING" not in found else None

        assert wait_for(statuses, RUN_SECONDS, "the execution's end") == ["SUCCEEDED"]
    finally:
        code = served.terminate()
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
    wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"], RUN_SECONDS, "an execution")
    workers = wait_for(lambda: _descendants(served.process.pid), RUN_SECONDS, "a function worker")

    code = served.terminate()

    assert code == 0, "".join(served.stderr)
    assert [pid for pid in workers if _alive(pid)] == []
