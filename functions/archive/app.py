"""Archive: stream the finished job's results file into ``results/<model>/<job>/`` and write summary.json.

Input: ``{"source", "job", "poll", "execution_id"}``.
Output: ``{"result_key", "summary_key", "size", "entries"}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction_one.deadline import invocation_deadline
from retrain_pipeline.retrain import archive_step
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs, unwrap

logger = Logger()
tracer = new_tracer()
metrics = new_metrics()
route_library_logs(logger)


@logger.inject_lambda_context(correlation_id_path="job.retrain_job_id")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with reported(logger, "Archive"), invocation_deadline(context):
        result = archive_step(
            unwrap(event, "source"),
            unwrap(event, "job"),
            unwrap(event, "poll"),
            unwrap(event, "execution_id"),
        )
    publish(metrics, result.metrics)
    logger.info(
        "Results archived", extra={"result_key": result.output["result_key"], "size": result.output["size"]}
    )
    return result.output
