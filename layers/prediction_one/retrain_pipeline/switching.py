"""The per-model switch gate, so the model that stays published is the one trained on the newest file.

One item per model in STATE_TABLE (``id = "switch#<model>"``):
``holder`` / ``lease_until`` while an execution is switching, and ``last_order`` / ``last_job`` /
``last_source`` / ``switched_at`` for the last file that was switched. Taking the gate is one conditional
write: free (or lease expired, or already ours) and the last switched file older than this one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from retrain_pipeline.errors import ModelSwitchBusy

NEWER_ALREADY_SWITCHED = "a newer file for this model was already switched"


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

    def acquire(self, order: str, holder: str, retrain_job_id: str, now: float | None = None) -> GateResult:
        """Take the gate for the file with ordering key ``order``.

        ACQUIRED: switch now, then ``release``. NEWER_SWITCHED: skip, a later file was switched.
        ALREADY_SWITCHED: this very job was switched already. ModelSwitchBusy: someone else holds it.
        """
        now = time.time() if now is None else now
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression="SET holder = :me, lease_until = :lease, holder_job = :job",
                ConditionExpression=(
                    "(attribute_not_exists(holder) OR lease_until < :now OR holder = :me) "
                    "AND (attribute_not_exists(last_order) OR last_order < :order)"
                ),
                ExpressionAttributeValues={
                    ":me": {"S": holder},
                    ":lease": {"N": str(int(now) + self.lease_seconds)},
                    ":now": {"N": str(int(now))},
                    ":order": {"S": order},
                    ":job": {"S": retrain_job_id},
                },
            )
            return GateResult.ACQUIRED
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
        item = self.read()
        last_order = item.get("last_order")
        if last_order is not None and last_order >= order:
            if last_order == order and item.get("last_job") == retrain_job_id:
                return GateResult.ALREADY_SWITCHED
            return GateResult.NEWER_SWITCHED
        lease = item.get("lease_until")
        raise ModelSwitchBusy(self.model, item.get("holder"), int(lease) if lease is not None else None)

    def release(
        self, holder: str, *, switched: bool, order: str, retrain_job_id: str, source_key: str
    ) -> None:
        """Give the gate back; when ``switched``, remember this file as the last one switched."""
        values: dict[str, Any] = {":me": {"S": holder}}
        update = "REMOVE holder, lease_until, holder_job"
        if switched:
            update = (
                "SET last_order = :order, last_job = :job, last_source = :source, switched_at = :at " + update
            )
            values |= {
                ":order": {"S": order},
                ":job": {"S": retrain_job_id},
                ":source": {"S": source_key},
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
