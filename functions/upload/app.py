"""Upload: check the new S3 object, then create its retrain job and stream the file to it (once per version).

Input (state machine): ``{"event": <EventBridge "Object Created" event>, "execution_id": <execution ARN>}``;
a bare EventBridge event is accepted too (``sam local invoke``). Output: the ``source``/``job``/``poll``/
``duplicate`` state of docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction_one.deadline import invocation_deadline
from retrain_pipeline.retrain import upload_step
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs

logger = Logger()
tracer = new_tracer()
metrics = new_metrics()
route_library_logs(logger)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    source_event = event.get("event", event)
    execution_id = event.get("execution_id") or f"invocation:{context.aws_request_id}"
    with reported(logger, "Upload"), invocation_deadline(context):
        result = upload_step(source_event, execution_id, lambda_context=context)
    publish(metrics, result.metrics)
    job = result.output["job"]
    logger.set_correlation_id(job["retrain_job_id"])
    logger.info(
        "Duplicate event: the retrain job already exists"
        if result.output["duplicate"]
        else "Retrain job started",
        extra={"model": job["model"], "retrain_job_id": job["retrain_job_id"]},
    )
    return result.output
