"""Archive: stream the finished job's results file into ``results/<model>/<job>/`` and write summary.json.

Input: ``{"source", "job", "poll", "execution_id"}``.
Output: ``{"result_key", "summary_key", "size", "entries"}``.
"""

from __future__ import annotations

from typing import Any

from retrain_pipeline.handler import step_handler
from retrain_pipeline.retrain_steps import archive_step
from retrain_pipeline.step import ARCHIVE, StepOutput
from retrain_pipeline.telemetry import unwrap


@step_handler(ARCHIVE, correlation_id_path="job.retrain_job_id")
def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
    return archive_step(
        unwrap(event, "source"), unwrap(event, "job"), unwrap(event, "poll"), unwrap(event, "execution_id")
    )
