"""CheckTraining: start a training watch or check it again, asking Prediction One's training status once.

Input of the StartWatch state: ``{"request": <execution input>, "execution_id": <execution ARN>}``, where
the execution input is an S3 "Object Created" event for ``training/<model>/<name>.json`` or
``{"model", "external_process_id"}``; a bare request is accepted too (``sam local invoke``).
Output: ``{"source", "training", "poll", "duplicate", "execution_id"}`` (docs/architecture.md).
Input of the CheckTraining state: ``{"training": {...}, "poll": {...}}``. Output: the new ``poll``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction_one.deadline import invocation_deadline
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs, unwrap
from retrain_pipeline.training import CHECK_STEP, START_STEP, check_training_step, start_watch_step

logger = Logger()
tracer = new_tracer()
metrics = new_metrics()
route_library_logs(logger)


def _start(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("request", event)
    execution_id = event.get("execution_id") or f"invocation:{context.aws_request_id}"
    with reported(logger, START_STEP), invocation_deadline(context):
        result = start_watch_step(request, execution_id, lambda_context=context)
    publish(metrics, result.metrics)
    output = result.output
    training = output["training"]
    logger.set_correlation_id(training["external_process_id"])
    logger.info(
        "Duplicate event: the training run is already watched"
        if output["duplicate"]
        else "Training watch started",
        extra={
            "model": training["model"],
            "external_process_id": training["external_process_id"],
            "status": output["poll"]["status"],
            "state": output["poll"]["state"],
        },
    )
    return output


def _check(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with reported(logger, CHECK_STEP), invocation_deadline(context):
        result = check_training_step(unwrap(event, "training"), unwrap(event, "poll"))
    publish(metrics, result.metrics)
    poll = result.output
    logger.info(
        "Training run checked",
        extra={
            "status": poll["status"],
            "state": poll["state"],
            "polls": poll["polls"],
            "wait": poll["wait_seconds"],
        },
    )
    return poll


@logger.inject_lambda_context(correlation_id_path="training.external_process_id")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and "training" in event and "request" not in event:
        return _check(event, context)
    return _start(event, context)
