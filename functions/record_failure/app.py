"""RecordFailure: write ``failed/<model>/<rest of key>.json`` naming the documented error in plain words.

Input: ``{"state": <the execution state with error and failed_step>, "execution_id": <execution ARN>}``.
Output: ``{"failure_key", "error", "message", "step", "execution_id"}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction_one.deadline import invocation_deadline
from retrain_pipeline.retrain import record_failure_step
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs, unwrap

logger = Logger()
tracer = new_tracer()
metrics = new_metrics()
route_library_logs(logger)


@logger.inject_lambda_context(correlation_id_path="state.job.retrain_job_id")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with reported(logger, "RecordFailure"), invocation_deadline(context):
        result = record_failure_step(unwrap(event, "state"), unwrap(event, "execution_id"))
    publish(metrics, result.metrics)
    output = result.output
    logger.info(
        "Failure recorded",
        extra={"failure_key": output["failure_key"], "error": output["error"], "step": output["step"]},
    )
    return result.output
