"""What one execution of a state machine came to, read from Step Functions' own records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FINISHED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Run:
    """One execution. ``state`` is the final state data: the output when it succeeded, the input of the
    Fail state when it failed there (the state then holds ``failure``), else ``None``."""

    execution_arn: str
    name: str
    state_machine_arn: str
    key: str | None
    version_id: str | None
    status: str
    state: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def _section(self, name: str) -> dict[str, Any]:
        value = (self.state or {}).get(name)
        return value if isinstance(value, dict) else {}

    @property
    def retrain_job_id(self) -> str | None:
        return self._section("job").get("retrain_job_id")

    @property
    def result_key(self) -> str | None:
        return self._section("archive").get("result_key")

    @property
    def summary_key(self) -> str | None:
        return self._section("archive").get("summary_key")

    @property
    def switched(self) -> bool:
        return bool(self._section("switch").get("switched", False))

    @property
    def duplicate(self) -> bool:
        return bool((self.state or {}).get("duplicate", False))

    @property
    def failure(self) -> dict[str, Any]:
        """``{"failure_key", "error", "message", "step"}`` when the failure path recorded one."""
        return self._section("failure")


def source_of(event: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """``(bucket, key, version id)`` of an S3 "Object Created" event (any other input: ``None``s)."""
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return None, None, None
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    return bucket, obj.get("key"), obj.get("version-id")


def object_etag(event: dict[str, Any]) -> str | None:
    """The object's etag (AWS spells the field ``etag``, moto ``eTag``)."""
    obj = (event.get("detail") or {}).get("object") or {}
    return obj.get("etag") or obj.get("eTag")


def final_state(status: str, output: str | None, history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The final state data of a finished execution (see :class:`Run`)."""
    if status == "SUCCEEDED" and output:
        return _json(output)
    for event in reversed(history):
        if event.get("type") == "FailStateEntered":
            return _json(event.get("stateEnteredEventDetails", {}).get("input"))
    return None


def failure_details(history: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """``(error, cause)`` of the event that ended a failed execution."""
    for event in reversed(history):
        for name in (
            "executionFailedEventDetails",
            "executionAbortedEventDetails",
            "executionTimedOutEventDetails",
        ):
            if name in event:
                details = event[name]
                return details.get("error"), details.get("cause")
    return None, None


def _json(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
