"""Which file is newer is decided by S3's facts about the files, not by when a pipeline step ran."""

from __future__ import annotations

from typing import Any

import pytest
from retrain_pipeline.switching import SwitchGate

SAME_INSTANT = "2026-11-30T09:00:00Z"


def finish(stack: Any, event: dict[str, Any]) -> dict[str, Any]:
    return stack.archive(stack.wait_finished(stack.upload(event, stack.execution_arn())))


def last_switched(stack: Any) -> str:
    return SwitchGate(stack.dynamodb, stack.table, "demo", 60).read()["last_source"]


@pytest.mark.parametrize("switch_newer_first", [True, False])
def test_same_instant_different_keys_the_greater_key_wins(stack: Any, switch_newer_first: bool) -> None:
    october = stack.put("incoming/demo/sales-2026-10.csv", stack.csv_bytes(seed=1), time=SAME_INSTANT)
    november = stack.put("incoming/demo/sales-2026-11.csv", stack.csv_bytes(seed=2), time=SAME_INSTANT)
    # The newer file's Upload runs first: when a step ran must not decide.
    new = finish(stack, november)
    old = finish(stack, october)
    order = [new, old] if switch_newer_first else [old, new]
    outcomes = {state["source"]["key"]: stack.switch(state)["switch"]["switched"] for state in order}
    assert last_switched(stack) == "incoming/demo/sales-2026-11.csv"
    assert outcomes["incoming/demo/sales-2026-11.csv"] is True
    assert outcomes["incoming/demo/sales-2026-10.csv"] is (not switch_newer_first)
    published = [s.get("job_id") or s.get("retrain_job_id") for s in stack.emulator.admin.switches()]
    assert published[-1] == new["job"]["retrain_job_id"]


def test_two_versions_of_one_key_the_later_sequencer_wins(stack: Any) -> None:
    key = "incoming/demo/sales.csv"
    first = stack.put(key, stack.csv_bytes(seed=1), time=SAME_INSTANT)
    second = stack.put(key, stack.csv_bytes(seed=2), time=SAME_INSTANT)
    assert first["detail"]["object"]["version-id"] != second["detail"]["object"]["version-id"]
    new = finish(stack, second)
    old = finish(stack, first)
    assert stack.switch(new)["switch"]["switched"] is True
    skipped = stack.switch(old)["switch"]
    assert skipped == {"switched": False, "reason": "a newer file for this model was already switched"}
    item = SwitchGate(stack.dynamodb, stack.table, "demo", 60).read()
    assert item["last_job"] == new["job"]["retrain_job_id"]


def test_sequencer_beats_event_time_for_one_key(stack: Any) -> None:
    """S3 orders the versions of one key by sequencer; event times of one key are not compared."""
    key = "incoming/demo/sales.csv"
    first = stack.put(key, stack.csv_bytes(seed=1), time="2026-11-30T09:00:01Z")
    second = stack.put(key, stack.csv_bytes(seed=2), time="2026-11-30T09:00:00Z")
    new, old = finish(stack, second), finish(stack, first)
    assert stack.switch(old)["switch"]["switched"] is True
    assert stack.switch(new)["switch"]["switched"] is True
    assert stack.switch(dict(old))["switch"]["switched"] is False  # replayed after the newer one
    item = SwitchGate(stack.dynamodb, stack.table, "demo", 60).read()
    assert item["last_job"] == new["job"]["retrain_job_id"]
