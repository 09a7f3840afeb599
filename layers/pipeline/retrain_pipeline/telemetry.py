"""What the handlers share for logs and metrics: publishing a step's metrics, reporting a step's error."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from prediction_one.errors import PredictionOneError

from retrain_pipeline.errors import PipelineError
from retrain_pipeline.failures import scrub
from retrain_pipeline.step import Metric

# The template's POWERTOOLS_METRICS_NAMESPACE (Globals), used only where that variable is not set.
DEFAULT_NAMESPACE = "P1Retrain"
LIBRARY_LOGGERS = frozenset({"retrain_pipeline", "prediction_one"})
# X-Ray patches only the AWS SDK. Patching requests (or http.client, which it uses) would trace Prediction
# One calls, and the X-Ray SDK records a failed request's exception text, which for requests holds the
# full URL: a presigned URL's signature would reach the trace.
TRACED_MODULES = ("botocore",)
_FLUSH_LOCK = threading.Lock()


def running_in_lambda(environ: Mapping[str, str] | None = None) -> bool:
    """True inside the AWS Lambda runtime (and ``sam local``), which sets ``AWS_EXECUTION_ENV``."""
    return (os.environ if environ is None else environ).get("AWS_EXECUTION_ENV", "").startswith("AWS_Lambda_")


def route_library_logs(logger: Logger, environ: Mapping[str, str] | None = None) -> bool:
    """In Lambda, send the pipeline's and the client's log lines through the handler's JSON logger.

    Elsewhere (tests, the local stack) they keep propagating to the root logger, where the host
    process collects them; returns whether the routing was installed.
    """
    if not running_in_lambda(environ):
        return False
    copy_config_to_registered_loggers(source_logger=logger, include=set(LIBRARY_LOGGERS))
    return True


def new_tracer() -> Tracer:
    """The handlers' Tracer: AWS SDK calls only (``TRACED_MODULES``), never the Prediction One HTTP calls."""
    return Tracer(patch_modules=TRACED_MODULES)


def new_metrics() -> Metrics:
    """Metrics in the namespace Powertools reads from POWERTOOLS_METRICS_NAMESPACE (the template's
    ``DEFAULT_NAMESPACE`` when the variable is not set, so a flush never fails for want of one)."""
    metrics = Metrics()
    if not metrics.namespace:
        metrics.namespace = DEFAULT_NAMESPACE
    return metrics


def publish(metrics: Metrics, items: Iterable[Metric]) -> None:
    """Add a step's metrics and flush them as one EMF line, atomically.

    Powertools keeps one metric set per process; Lambda runs one invocation per process at a time, but
    the local stack runs handlers on several threads, where a flush racing another invocation's flush
    could emit someone else's metrics or fail on an emptied set. A step with nothing to count prints
    nothing.
    """
    items = list(items)
    if not items:
        return
    with _FLUSH_LOCK:
        for name, unit, value in items:
            metrics.add_metric(name=name, unit=unit, value=value)
        metrics.flush_metrics()


def unwrap(event: Mapping[str, Any], name: str) -> Any:
    """``event[name]``, or a clear error naming the missing field of the state machine's input."""
    try:
        return event[name]
    except (KeyError, TypeError):
        raise ValueError(f"the function input has no {name!r} field") from None


@contextmanager
def reported(logger: Logger, step: str) -> Iterator[None]:
    """Log a failing step once, by error name, without secrets; the exception still propagates."""
    try:
        yield
    except (PipelineError, PredictionOneError) as error:
        logger.warning(
            f"{step} failed",
            extra={"error": type(error).__name__, "error_message": scrub(str(error)), "step": step},
        )
        raise
    except Exception as error:
        logger.error(
            f"{step} failed unexpectedly",
            extra={"error": type(error).__name__, "error_message": scrub(str(error)), "step": step},
        )
        raise
