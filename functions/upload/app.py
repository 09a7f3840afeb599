"""Upload: check the new S3 object, then create its retrain job and stream the file to it (once per version).

Input (state machine): ``{"event": <EventBridge "Object Created" event>, "execution_id": <execution ARN>}``;
a bare EventBridge event is accepted too (``sam local invoke``). Output: the ``source``/``job``/``poll``/
``duplicate`` state of docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.retrain_steps import upload_step
from retrain_pipeline.step import UPLOAD, StepOutput


@step_handler(UPLOAD)
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    execution_id = event.get("execution_id") or f"invocation:{context.aws_request_id}"
    return upload_step(event.get("event", event), execution_id, lambda_context=context)
