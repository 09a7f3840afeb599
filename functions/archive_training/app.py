"""ArchiveTraining: stream the finished training run's results into
``results/<model>/training/<external_process_id>/`` and write summary.json listing the zip's entries.

Input: ``{"source" (null for a direct start), "training", "poll", "execution_id"}``.
Output: ``{"result_key", "summary_key", "size", "entries", "already_archived"}``.
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.step import ARCHIVE_TRAINING, StepOutput
from retrain_pipeline.telemetry import unwrap
from retrain_pipeline.training_steps import archive_training_step


@step_handler(ARCHIVE_TRAINING, correlation_id_path="training.external_process_id")
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    return archive_training_step(
        event.get("source"), unwrap(event, "training"), unwrap(event, "poll"), unwrap(event, "execution_id")
    )
