"""The RecordFailure step, shared by both workflows: write the failed execution's record under
``failed/`` (``failures`` builds it, ``keys`` names it) and return the notification NotifyFailure sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from retrain_pipeline import failures, keys
from retrain_pipeline.aws import aws_client
from retrain_pipeline.s3io import write_json
from retrain_pipeline.settings import PipelineSettings
from retrain_pipeline.step import StepOutput, now, output_bucket


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _recorded(
    record: dict[str, Any],
    *,
    bucket: str,
    key: str,
    error: failures.StepError,
    step: str,
    execution_id: str,
    workflow: str,
    metric: str,
) -> StepOutput:
    write_json(aws_client("s3"), bucket, key, record)
    output = {
        "failure_key": key,
        "error": error.name,
        "message": error.message,
        "step": step,
        "execution_id": execution_id,  # an Upload failure's state has no top-level execution_id
        "notification": failures.failure_notification(
            record, bucket=bucket, failure_key=key, workflow=workflow
        ),
    }
    return StepOutput(
        output,
        [(metric, MetricUnit.Count, 1)],
        log="Failure recorded",
        log_extra={"failure_key": key, "error": error.name, "step": step},
    )


def _retrain_failure(state: Mapping[str, Any], execution_id: str, settings: PipelineSettings) -> StepOutput:
    error = failures.StepError.from_asl(state.get("error"))
    job = state.get("job") if isinstance(state.get("job"), Mapping) else None
    poll = state.get("poll") if isinstance(state.get("poll"), Mapping) else None
    if job and poll:
        error = failures.job_error(error, job, poll)
    source, raw_key = failures.failure_source(state)
    step = str(state.get("failed_step") or "Unknown")
    record = failures.build_failure_record(
        error=error,
        step=step,
        execution_id=execution_id,
        source=source,
        raw_key=raw_key,
        job=job,
        poll=poll,
        recorded_at=now(),
    )
    return _recorded(
        record,
        bucket=output_bucket(settings, source),
        key=keys.retrain_failure_key(raw_key, execution_id),
        error=error,
        step=step,
        execution_id=execution_id,
        workflow=failures.RETRAIN,
        metric="JobsFailed",
    )


def _training_failure(state: Mapping[str, Any], execution_id: str, settings: PipelineSettings) -> StepOutput:
    error = failures.StepError.from_asl(state.get("error"))
    training, poll = _mapping(state.get("training")), _mapping(state.get("poll"))
    if training and poll:
        error = failures.training_error(error, training, poll)
    source, raw_key = failures.failure_source(state)
    model, process_id = failures.training_identity(state, training, raw_key)
    step = str(state.get("failed_step") or "Unknown")
    record = failures.build_training_failure_record(
        error=error,
        step=step,
        execution_id=execution_id,
        source=source,
        raw_key=raw_key,
        model=model,
        process_id=process_id,
        training=training,
        poll=poll,
        recorded_at=now(),
    )
    return _recorded(
        record,
        bucket=output_bucket(settings, source),
        key=keys.training_failure_key(raw_key, model, process_id, execution_id),
        error=error,
        step=step,
        execution_id=execution_id,
        workflow=failures.TRAINING,
        metric="TrainingWatchesFailed",
    )


def record_failure_step(
    state: Mapping[str, Any], execution_id: str, *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Write ``failed/<model>/<rest of key>.json`` for a failed execution of either workflow."""
    settings = settings or PipelineSettings.from_env()
    if failures.is_training_state(state):
        return _training_failure(state, execution_id, settings)
    return _retrain_failure(state, execution_id, settings)
