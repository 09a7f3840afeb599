"""What the matrix tests read back from the local stack: failure records, notifications, leaks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from p1_retrain.local.stack import LocalStack

SIGNATURE_MARKERS = ("X-Amz-", "Signature")
RETRAIN_FAILED_SUBJECT = "Prediction One retrain failed"


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Call ``condition`` until it returns something truthy (returned); ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:g} s")
        tick.wait(interval)


def failure_record(stack: LocalStack, failure_key: str) -> dict[str, Any]:
    return json.loads(stack.read_object(failure_key))


def failure_notifications(stack: LocalStack, failure_key: str) -> list[dict[str, Any]]:
    """The SNS messages published for the failure recorded at ``failure_key``."""
    where = f"s3://{stack.bucket}/{failure_key}"
    return [
        item for item in stack.notifications() if (item.get("message") or {}).get("failure_record") == where
    ]


def latest_version(stack: LocalStack, key: str) -> str | None:
    """The version id of the object now at ``key`` (raises when it is gone)."""
    return stack.s3.head_object(Bucket=stack.bucket, Key=key).get("VersionId")


def everything_written(stack: LocalStack) -> str:
    """Logs, every execution's history, the notifications and every JSON object under failed/ and results/."""
    texts = list(stack.logs())
    for item in stack.executions():
        texts.extend(
            json.dumps(event, default=str) for event in stack.execution_history(item["executionArn"])
        )
    texts.extend(json.dumps(item, default=str) for item in stack.notifications())
    for prefix in ("failed/", "results/"):
        texts.extend(
            stack.read_object(key).decode("utf-8", "replace")
            for key in stack.list_keys(prefix)
            if key.endswith(".json")
        )
    return "\n".join(texts)


def leaks(text: str, api_keys: Iterable[str]) -> list[str]:
    """What must never be written: an API key (named by position only) or a presigned query marker."""
    found = [f"api key #{index}" for index, key in enumerate(api_keys) if key and key in text]
    return found + [marker for marker in SIGNATURE_MARKERS if marker in text]
