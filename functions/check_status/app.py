"""CheckStatus: ask Prediction One for the retrain job's status once and plan the next poll.

Input: ``{"job": {...}, "poll": {...}}``. Output: the new ``poll`` (state running/finished/failed/deadline).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction_one.deadline import invocation_deadline
from retrain_pipeline.retrain import check_status_step
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs, unwrap

logger = Logger()
tracer = new_tracer()
metrics = new_metrics()
route_library_logs(logger)


@logger.inject_lambda_context(correlation_id_path="job.retrain_job_id")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with reported(logger, "CheckStatus"), invocation_deadline(context):
        result = check_status_step(unwrap(event, "job"), unwrap(event, "poll"))
    publish(metrics, result.metrics)
    poll = result.output
    logger.info(
        "Retrain job checked",
        extra={
            "status": poll["status"],
            "state": poll["state"],
            "polls": poll["polls"],
            "wait": poll["wait_seconds"],
        },
    )
    return poll
