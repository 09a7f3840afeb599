"""Whole runs through every handler in the order of the state machine, and what must never leak."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest


def run(stack: Any, key: str, body: bytes, *, switch: bool) -> dict[str, Any]:
    state = stack.upload(stack.put(key, body), stack.execution_arn())
    state = stack.wait_finished(state)
    assert state["poll"]["state"] == "finished"
    state = stack.archive(state)
    if switch:
        state = stack.switch(state)
    return state


def test_csv_run_with_switch(stack: Any) -> None:
    stack.set_secret({"demo": {"api_key": "demo-key", "auto_switch": True}})
    state = run(stack, "incoming/demo/weekly sales+returns.csv", stack.csv_bytes(), switch=True)
    assert state["job"]["auto_switch"] is True
    assert state["switch"]["switched"] is True
    summary = stack.read_json(state["archive"]["summary_key"])
    assert summary["switched"] is True
    assert summary["source"]["key"] == "incoming/demo/weekly sales+returns.csv"
    json.dumps(state)  # the state is plain JSON


def test_zip_run(stack: Any) -> None:
    state = run(stack, "incoming/demo/train+eval.zip", stack.zip_bytes(), switch=False)
    assert stack.read_json(state["archive"]["summary_key"])["result"]["entries"]


def test_no_secret_in_logs_states_or_records(stack: Any, logs: io.StringIO, written: Any) -> None:
    api_key = "sk-live-0123456789abcdef"
    stack.emulator.admin.add_model("churn", api_key)
    stack.set_secret({"demo": "demo-key", "churn": {"api_key": api_key, "auto_switch": True}})
    stack.emulator.admin.set_faults(rate=1.0, kinds=["lost_answer"], endpoints=["upload"])
    state = stack.upload(stack.put("incoming/churn/a.csv", stack.csv_bytes()), stack.execution_arn())
    stack.emulator.admin.clear_faults()
    state = stack.switch(stack.archive(stack.wait_finished(state)))

    stack.set_secret({"demo": "demo-key", "churn": "wrong-" + api_key})
    bad = stack.put("incoming/churn/b.csv", stack.csv_bytes())
    with pytest.raises(Exception) as raised:
        stack.upload(bad)
    failure = stack.record_failure(stack.failed_state(bad, raised.value, "Upload"))

    text = written(state, failure, str(raised.value))
    assert "Retrain job started" in logs.getvalue()  # the capture did see the run
    assert "/_storage/upload/" in logs.getvalue()  # including the client's request lines
    assert api_key not in text
    assert not re.search(r"X-Amz-(Signature|Credential|Date|Expires)=", text, re.IGNORECASE)
