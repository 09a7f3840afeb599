"""RecordFailure (both workflows): write ``failed/<model>/<rest of key>.json`` naming the documented error in
plain words, and return the notification NotifyFailure publishes.

Input: ``{"state": <the execution state with error and failed_step>, "execution_id": <execution ARN>}``.
Output: ``{"failure_key", "error", "message", "step", "execution_id", "notification"}``.
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.record_failure import record_failure_step
from retrain_pipeline.step import RECORD_FAILURE, StepOutput
from retrain_pipeline.telemetry import unwrap


@step_handler(RECORD_FAILURE, correlation_id_path="state.job.retrain_job_id")
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    return record_failure_step(unwrap(event, "state"), unwrap(event, "execution_id"))
