"""SwitchModel: publish the retrained model, unless a newer file for the same model was already switched.

Input: the whole execution state (``source``, ``job``, ``archive``, ``execution_id``).
Output: ``{"switched": bool, "reason": str}``.
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.retrain_steps import switch_step
from retrain_pipeline.step import SWITCH_MODEL, StepOutput
from retrain_pipeline.telemetry import unwrap


@step_handler(SWITCH_MODEL, correlation_id_path="job.retrain_job_id")
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    return switch_step(
        unwrap(event, "source"),
        unwrap(event, "job"),
        unwrap(event, "execution_id"),
        archive=event.get("archive"),
    )
