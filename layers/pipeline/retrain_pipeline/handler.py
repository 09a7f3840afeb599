"""What every Lambda handler does around its step, as one decorator: ``@step_handler(step)``.

The handler itself only parses its event, calls the step and returns the step's ``StepOutput``. Around it,
``step_handler`` keeps the Powertools set-up every function shares: the JSON logger (with the Lambda context
and the correlation id), the tracer (AWS SDK calls only, ``telemetry.new_tracer``), the invocation's time
budget (``prediction_one.deadline.invocation_deadline``), one log line per failure by error name without
secrets (``telemetry.reported``), the step's metrics flushed as one EMF line (``telemetry.publish``) and the
step's one-line outcome in the log. It returns what the state machine stores: ``StepOutput.output``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.middleware_factory import lambda_handler_decorator
from prediction_one.deadline import invocation_deadline

from retrain_pipeline.step import StepOutput
from retrain_pipeline.telemetry import new_metrics, new_tracer, publish, reported, route_library_logs

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Telemetry:
    logger: Logger
    tracer: Tracer
    metrics: Metrics


@functools.cache
def telemetry() -> Telemetry:
    """The process's logger, tracer and metrics, made when the first handler module is imported (so they
    read the function's environment then, as a handler's module-level set-up would)."""
    logger = Logger()
    route_library_logs(logger)
    return Telemetry(logger, new_tracer(), new_metrics())


@lambda_handler_decorator
def _run_step(handler: Handler, event: Any, context: Any, step: str) -> dict[str, Any]:
    kit = telemetry()
    with reported(kit.logger, step), invocation_deadline(context):
        result: StepOutput = handler(event, context)
    publish(kit.metrics, result.metrics)
    if result.correlation_id:
        kit.logger.set_correlation_id(result.correlation_id)
    if result.log:
        kit.logger.info(result.log, extra=result.log_extra)
    return result.output


def step_handler(step: str, *, correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Decorate ``lambda_handler(event, context) -> StepOutput`` of the function that runs ``step``.

    ``correlation_id_path`` is where the event names the id the log lines carry (a JMESPath, as for
    Powertools' ``inject_lambda_context``); a step that learns it only while running returns it as
    ``StepOutput.correlation_id``.
    """

    def decorate(handler: Handler) -> Handler:
        kit = telemetry()
        traced = kit.tracer.capture_lambda_handler(_run_step(handler, step=step), capture_response=False)
        return functools.wraps(handler)(
            kit.logger.inject_lambda_context(traced, correlation_id_path=correlation_id_path)
        )

    return decorate
