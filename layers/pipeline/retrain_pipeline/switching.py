"""The per-model switch gate, so the model that stays published is the one trained on the newest file.

One item per model in STATE_TABLE (``id = "switch#<model>"``):
``holder`` / ``lease_until`` while an execution is switching, and ``last_order`` / ``last_job`` /
``last_source`` / ``last_sequencer`` / ``last_event_time`` / ``switched_at`` for the last file that was
switched.

Which file is newer is decided only by facts S3 gives about the files, never by when a step of the
pipeline happened to run (:class:`SwitchOrder`): two versions of one key are ordered by S3's sequencer;
files with different keys by their event time (milliseconds), then by the key itself, so
``sales-2026-11.csv`` beats ``sales-2026-10.csv`` dropped in the same instant.

Taking the gate reads the item, decides in Python whether this file is newer than the last one switched,
then makes one conditional write: the gate is free (or its lease expired, or it is already ours) and the
last switched file is still the one that was read. A concurrent change makes the write fail and the
decision is taken again on the new item.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from retrain_pipeline.errors import ModelSwitchBusy
from retrain_pipeline.timestamps import iso, parse_iso

NEWER_ALREADY_SWITCHED = "a newer file for this model was already switched"
_NO_TIME = "0000-00-00T00:00:00.000Z"
_ATTEMPTS = 5


def _event_time_ms(value: str) -> str:
    """An event time as UTC ISO 8601 with milliseconds (sortable as text)."""
    if not value:
        return _NO_TIME
    try:
        return iso(parse_iso(value))
    except ValueError:
        return value


def sequencer_value(sequencer: str) -> int | None:
    """S3's sequencer as a number: AWS compares them after left-padding the shorter with zeros."""
    try:
        return int(sequencer, 16) if sequencer else None
    except ValueError:
        return None


@dataclass(frozen=True)
class SwitchOrder:
    """Where one source object version stands in "which file is newer" for its model."""

    key: str
    sequencer: str
    event_time: str

    @classmethod
    def of(cls, source: Any) -> SwitchOrder:
        """From a ``SourceObject`` (or anything with ``key``, ``sequencer`` and ``event_time``)."""
        return cls(str(source.key), str(source.sequencer or ""), _event_time_ms(str(source.event_time or "")))

    @property
    def token(self) -> str:
        """A readable summary stored as ``last_order`` (and used to detect concurrent changes)."""
        return f"{self.event_time}#{self.key}#{self.sequencer}"

    def is_newer_than(self, other: SwitchOrder) -> bool:
        if self.key == other.key:
            mine, theirs = sequencer_value(self.sequencer), sequencer_value(other.sequencer)
            if mine is not None and theirs is not None and mine != theirs:
                return mine > theirs
        return (self.event_time, self.key) > (other.event_time, other.key)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SwitchOrder | None:
        """The last switched file's order from a gate item (items of older versions: from ``last_order``)."""
        if "last_order" not in item:
            return None
        if "last_event_time" in item:
            return cls(
                str(item.get("last_source", "")), str(item.get("last_sequencer", "")), item["last_event_time"]
            )
        # Written before the sequencer and time were stored: "<event time>#<arrival>#<sequencer>".
        head = str(item["last_order"]).split("#", 1)[0]
        return cls(str(item.get("last_source", "")), "", _event_time_ms(head))


class GateResult(Enum):
    ACQUIRED = "acquired"
    NEWER_SWITCHED = "newer_switched"
    ALREADY_SWITCHED = "already_switched"


def gate_id(model: str) -> str:
    return f"switch#{model}"


@dataclass
class SwitchGate:
    """Take, release and inspect one model's gate."""

    dynamodb: Any
    table: str
    model: str
    lease_seconds: int

    @property
    def _key(self) -> dict[str, Any]:
        return {"id": {"S": gate_id(self.model)}}

    def acquire(
        self, order: SwitchOrder, holder: str, retrain_job_id: str, now: float | None = None
    ) -> GateResult:
        """Take the gate for the file at ``order``.

        ACQUIRED: switch now, then ``release``. NEWER_SWITCHED: skip, a newer file was switched.
        ALREADY_SWITCHED: this very job was switched already. ModelSwitchBusy: someone else holds it.
        """
        now = time.time() if now is None else now
        for _ in range(_ATTEMPTS):
            item = self.read()
            last = SwitchOrder.from_item(item)
            if last is not None and item.get("last_job") == retrain_job_id:
                return GateResult.ALREADY_SWITCHED
            if last is not None and not order.is_newer_than(last):
                return GateResult.NEWER_SWITCHED
            held = (
                "holder" in item and item.get("holder") != holder and int(item.get("lease_until", 0)) >= now
            )
            if held:
                break
            values: dict[str, Any] = {
                ":me": {"S": holder},
                ":lease": {"N": str(int(now) + self.lease_seconds)},
                ":now": {"N": str(int(now))},
                ":job": {"S": retrain_job_id},
            }
            if last is None:
                unchanged = "attribute_not_exists(last_order)"
            else:
                unchanged = "last_order = :seen"
                values[":seen"] = {"S": str(item["last_order"])}
            try:
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=self._key,
                    UpdateExpression="SET holder = :me, lease_until = :lease, holder_job = :job",
                    ConditionExpression=(
                        "(attribute_not_exists(holder) OR lease_until < :now OR holder = :me) "
                        f"AND {unchanged}"
                    ),
                    ExpressionAttributeValues=values,
                )
                return GateResult.ACQUIRED
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
        item = self.read()
        lease = item.get("lease_until")
        raise ModelSwitchBusy(self.model, item.get("holder"), int(lease) if lease is not None else None)

    def release(self, holder: str, *, switched: bool, order: SwitchOrder, retrain_job_id: str) -> None:
        """Give the gate back; when ``switched``, remember this file as the last one switched."""
        values: dict[str, Any] = {":me": {"S": holder}}
        update = "REMOVE holder, lease_until, holder_job"
        if switched:
            update = (
                "SET last_order = :order, last_job = :job, last_source = :source, "
                "last_sequencer = :sequencer, last_event_time = :event_time, switched_at = :at " + update
            )
            values |= {
                ":order": {"S": order.token},
                ":job": {"S": retrain_job_id},
                ":source": {"S": order.key},
                ":sequencer": {"S": order.sequencer},
                ":event_time": {"S": order.event_time},
                ":at": {"N": str(int(time.time()))},
            }
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression=update,
                ConditionExpression="holder = :me",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            # The lease expired and someone else took the gate: it is theirs now.
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def read(self) -> dict[str, Any]:
        """The gate item as plain values ({} when the model was never switched)."""
        answer = self.dynamodb.get_item(TableName=self.table, Key=self._key, ConsistentRead=True)
        plain: dict[str, Any] = {}
        for name, value in answer.get("Item", {}).items():
            (kind, raw), *_ = value.items()
            plain[name] = int(raw) if kind == "N" else raw
        return plain
