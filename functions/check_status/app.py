"""CheckStatus: ask Prediction One for the retrain job's status once and plan the next poll.

Input: ``{"job": {...}, "poll": {...}}``. Output: the new ``poll`` (state running/finished/failed/deadline).
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.retrain_steps import check_status_step
from retrain_pipeline.step import CHECK_STATUS, StepOutput
from retrain_pipeline.telemetry import unwrap


@step_handler(CHECK_STATUS, correlation_id_path="job.retrain_job_id")
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    return check_status_step(unwrap(event, "job"), unwrap(event, "poll"))
