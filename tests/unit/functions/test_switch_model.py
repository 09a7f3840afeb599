"""SwitchModel handler: the switch, its ordering gate and the summary update."""

from __future__ import annotations

from typing import Any

import pytest
from prediction_one import PredictionOneClient
from prediction_one import errors as p1_errors
from retrain_pipeline.errors import ModelSwitchBusy
from retrain_pipeline.switching import SwitchGate, SwitchOrder


def archived(stack: Any, key: str, time: str, seed: int = 0) -> dict[str, Any]:
    event = stack.put(key, stack.csv_bytes(seed=seed), time=time)
    state = stack.wait_finished(stack.upload(event, stack.execution_arn()))
    return stack.archive(state)


def test_switch_publishes_and_updates_the_summary(stack: Any) -> None:
    state = stack.switch(archived(stack, "incoming/demo/a.csv", "2024-05-01T10:00:00Z"))
    assert state["switch"] == {"switched": True, "reason": "the retrained model was published"}
    switches = stack.emulator.admin.switches()
    assert [s["job_id"] if "job_id" in s else s.get("retrain_job_id") for s in switches] == [
        state["job"]["retrain_job_id"]
    ]
    summary = stack.read_json(state["archive"]["summary_key"])
    assert summary["switched"] is True
    assert summary["switch"]["execution_id"] == state["execution_id"]
    assert "holder" not in SwitchGate(stack.dynamodb, stack.table, "demo", 60).read()


def test_older_file_after_newer_is_not_switched(stack: Any) -> None:
    older = archived(stack, "incoming/demo/jan.csv", "2024-05-01T10:00:00Z", seed=1)
    newer = archived(stack, "incoming/demo/feb.csv", "2024-05-01T10:05:00Z", seed=2)
    assert stack.switch(newer)["switch"]["switched"] is True
    skipped = stack.switch(older)["switch"]
    assert skipped == {"switched": False, "reason": "a newer file for this model was already switched"}
    assert len(stack.emulator.admin.switches()) == 1
    summary = stack.read_json(older["archive"]["summary_key"])
    assert summary["switched"] is False
    assert summary["switch"]["reason"] == skipped["reason"]


def test_files_switched_in_order_all_switch(stack: Any) -> None:
    first = archived(stack, "incoming/demo/jan.csv", "2024-05-01T10:00:00Z", seed=1)
    second = archived(stack, "incoming/demo/feb.csv", "2024-05-01T10:05:00Z", seed=2)
    assert stack.switch(first)["switch"]["switched"] is True
    assert stack.switch(second)["switch"]["switched"] is True
    assert len(stack.emulator.admin.switches()) == 2


def test_replayed_switch_of_the_same_job(stack: Any) -> None:
    state = archived(stack, "incoming/demo/a.csv", "2024-05-01T10:00:00Z")
    stack.switch(state)
    again = stack.switch(dict(state))
    assert again["switch"] == {"switched": True, "reason": "this retrain job was already switched"}
    assert len(stack.emulator.admin.switches()) == 1


def test_busy_gate_is_a_transient_error(stack: Any) -> None:
    state = archived(stack, "incoming/demo/a.csv", "2024-05-01T10:00:00Z")
    gate = SwitchGate(stack.dynamodb, stack.table, "demo", 600)
    gate.acquire(
        SwitchOrder("incoming/demo/x.csv", "00", "2000-01-01T00:00:00.000Z"), "someone-else", "other-job"
    )
    with pytest.raises(ModelSwitchBusy, match="someone-else"):
        stack.switch(state)
    assert stack.emulator.admin.switches() == []


def test_failed_switch_frees_the_gate(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    state = archived(stack, "incoming/demo/a.csv", "2024-05-01T10:00:00Z")
    stack.emulator.admin.delete_model("demo")
    with pytest.raises(p1_errors.PredictionOneError) as failed:
        stack.switch(state)
    assert type(failed.value).__name__ in {"ClassifierNotFound", "ModelDeleted"}
    assert "holder" not in SwitchGate(stack.dynamodb, stack.table, "demo", 60).read()
    assert "last_order" not in SwitchGate(stack.dynamodb, stack.table, "demo", 60).read()


def test_switch_errors_release_even_on_unexpected_errors(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    state = archived(stack, "incoming/demo/a.csv", "2024-05-01T10:00:00Z")

    def broken(self: Any, retrain_job_id: str) -> None:
        raise RuntimeError("socket exploded")

    monkeypatch.setattr(PredictionOneClient, "update_model", broken)
    with pytest.raises(RuntimeError):
        stack.switch(state)
    assert "holder" not in SwitchGate(stack.dynamodb, stack.table, "demo", 60).read()
