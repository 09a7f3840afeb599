"""CheckTraining: ask Prediction One for the watched training run's status once and plan the next poll.

Input: ``{"training": {...}, "poll": {...}}``.
Output: the new ``poll`` (state running/finished/failed/deadline).
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.step import CHECK_TRAINING, StepOutput
from retrain_pipeline.telemetry import unwrap
from retrain_pipeline.training_steps import check_training_step


@step_handler(CHECK_TRAINING, correlation_id_path="training.external_process_id")
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    return check_training_step(unwrap(event, "training"), unwrap(event, "poll"))
