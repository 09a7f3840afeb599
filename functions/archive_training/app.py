"""ArchiveTraining: stream the finished training run's results into
``results/<model>/training/<external_process_id>/`` and write summary.json listing the zip's entries.

Input: ``{"source" (null for a direct start), "training", "poll", "execution_id"}``.
Output: ``{"result_key", "summary_key", "size", "entries", "already_archived"}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction_one.deadline import invocation_deadline
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs, unwrap
from retrain_pipeline.training import ARCHIVE_STEP, archive_training_step

logger = Logger()
tracer = new_tracer()
metrics = new_metrics()
route_library_logs(logger)


@logger.inject_lambda_context(correlation_id_path="training.external_process_id")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with reported(logger, ARCHIVE_STEP), invocation_deadline(context):
        result = archive_training_step(
            event.get("source"),
            unwrap(event, "training"),
            unwrap(event, "poll"),
            unwrap(event, "execution_id"),
        )
    publish(metrics, result.metrics)
    output = result.output
    logger.info(
        "Training results already archived" if output["already_archived"] else "Training results archived",
        extra={"result_key": output["result_key"], "size": output["size"]},
    )
    return output
