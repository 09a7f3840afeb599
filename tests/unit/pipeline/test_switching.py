"""The per-model switch gate on DynamoDB (moto)."""

from __future__ import annotations

from typing import Any

import pytest
from retrain_pipeline.errors import ModelSwitchBusy
from retrain_pipeline.switching import GateResult, SwitchGate, SwitchOrder

OLD = SwitchOrder("incoming/demo/a.csv", "01", "2024-01-01T00:00:00.000Z")
NEW = SwitchOrder("incoming/demo/b.csv", "02", "2024-01-01T00:00:05.000Z")
NEWER = SwitchOrder("incoming/demo/c.csv", "03", "2024-01-01T00:01:00.000Z")


def gate(dynamodb: Any, lease: int = 60) -> SwitchGate:
    return SwitchGate(dynamodb, "state-table", "demo", lease)


def test_take_switch_release_records_the_file(dynamodb: Any) -> None:
    g = gate(dynamodb)
    assert g.acquire(NEW, "exec-1", "job-1", now=1000) is GateResult.ACQUIRED
    assert g.read()["holder"] == "exec-1"
    g.release("exec-1", switched=True, order=NEW, retrain_job_id="job-1")
    item = g.read()
    assert "holder" not in item
    assert (item["last_order"], item["last_job"], item["last_source"]) == (
        NEW.token,
        "job-1",
        "incoming/demo/b.csv",
    )


def test_busy_while_held_then_free_after_the_lease(dynamodb: Any) -> None:
    g = gate(dynamodb, lease=60)
    assert g.acquire(OLD, "exec-1", "job-1", now=1000) is GateResult.ACQUIRED
    with pytest.raises(ModelSwitchBusy, match="exec-1") as busy:
        g.acquire(NEW, "exec-2", "job-2", now=1030)
    assert busy.value.transient
    # The holder crashed: once its lease is over, the gate can be taken.
    assert g.acquire(NEW, "exec-2", "job-2", now=1061) is GateResult.ACQUIRED
    # The late holder's release does not free someone else's gate.
    g.release("exec-1", switched=True, order=OLD, retrain_job_id="job-1")
    assert g.read()["holder"] == "exec-2"
    assert "last_order" not in g.read()


def test_the_holder_may_take_its_gate_again(dynamodb: Any) -> None:
    g = gate(dynamodb)
    assert g.acquire(NEW, "exec-1", "job-1", now=1000) is GateResult.ACQUIRED
    assert g.acquire(NEW, "exec-1", "job-1", now=1001) is GateResult.ACQUIRED


def test_an_older_file_after_a_newer_one_is_skipped(dynamodb: Any) -> None:
    g = gate(dynamodb)
    assert g.acquire(NEWER, "exec-new", "job-new", now=1000) is GateResult.ACQUIRED
    g.release("exec-new", switched=True, order=NEWER, retrain_job_id="job-new")
    assert g.acquire(OLD, "exec-old", "job-old", now=1001) is GateResult.NEWER_SWITCHED
    assert g.acquire(NEWER, "exec-new", "job-new", now=1002) is GateResult.ALREADY_SWITCHED
    assert g.acquire(NEWER, "exec-other", "job-other", now=1003) is GateResult.NEWER_SWITCHED
    assert "holder" not in g.read()


def test_failed_switch_releases_without_recording(dynamodb: Any) -> None:
    g = gate(dynamodb)
    assert g.acquire(NEW, "exec-1", "job-1", now=1000) is GateResult.ACQUIRED
    g.release("exec-1", switched=False, order=NEW, retrain_job_id="job-1")
    assert g.read() == {"id": "switch#demo"}
    assert g.acquire(OLD, "exec-0", "job-0", now=1001) is GateResult.ACQUIRED


def test_gates_are_per_model(dynamodb: Any) -> None:
    a = SwitchGate(dynamodb, "state-table", "a", 60)
    b = SwitchGate(dynamodb, "state-table", "b", 60)
    assert a.acquire(NEW, "exec-a", "job-a", now=1000) is GateResult.ACQUIRED
    assert b.acquire(OLD, "exec-b", "job-b", now=1000) is GateResult.ACQUIRED
