"""StartWatch: read and check a training watch request (once per object version) and ask Prediction One
for the training run's status once.

Input: ``{"request": <execution input>, "execution_id": <execution ARN>}``, where the execution input is an
S3 "Object Created" event for ``training/<model>/<name>.json`` or ``{"model", "external_process_id"}``; a
bare request is accepted too (``sam local invoke``).
Output: ``{"source", "training", "poll", "duplicate", "execution_id"}`` (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.step import START_WATCH, StepOutput
from retrain_pipeline.training_steps import start_watch_step


@step_handler(START_WATCH)
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    execution_id = event.get("execution_id") or f"invocation:{context.aws_request_id}"
    return start_watch_step(event.get("request", event), execution_id, lambda_context=context)
