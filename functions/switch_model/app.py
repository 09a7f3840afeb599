"""SwitchModel: publish the retrained model, unless a newer file for the same model was already switched.

Input: the whole execution state (``source``, ``job``, ``archive``, ``execution_id``).
Output: ``{"switched": bool, "reason": str}``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from prediction_one.deadline import invocation_deadline
from retrain_pipeline.retrain import switch_step
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs, unwrap

logger = Logger()
tracer = new_tracer()
metrics = new_metrics()
route_library_logs(logger)


@logger.inject_lambda_context(correlation_id_path="job.retrain_job_id")
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with reported(logger, "SwitchModel"), invocation_deadline(context):
        result = switch_step(
            unwrap(event, "source"),
            unwrap(event, "job"),
            unwrap(event, "execution_id"),
            archive=event.get("archive"),
        )
    publish(metrics, result.metrics)
    return result.output
