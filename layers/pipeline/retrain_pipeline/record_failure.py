"""The RecordFailure step, shared by both workflows: write the failed execution's record under
``failed/`` (``failures`` builds it, ``keys`` names it) and return the notification NotifyFailure sends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from retrain_pipeline import failures, keys
from retrain_pipeline.aws import aws_client
from retrain_pipeline.s3io import write_json
from retrain_pipeline.settings import PipelineSettings
from retrain_pipeline.step import StepOutput, now, output_bucket

# A workflow's record of a failure: the failure (its error told in the workflow's terms), the record and
# its key.
Recorded = tuple[failures.Failure, dict[str, Any], str]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _retrain_record(state: Mapping[str, Any], failure: failures.Failure) -> Recorded:
    job = state.get("job") if isinstance(state.get("job"), Mapping) else None
    poll = state.get("poll") if isinstance(state.get("poll"), Mapping) else None
    if job and poll:
        failure = failure.with_error(failures.job_error(failure.error, job, poll))
    record = failures.build_failure_record(failure, job=job, poll=poll, recorded_at=now())
    return failure, record, keys.retrain_failure_key(failure.raw_key, failure.execution_id)


def _training_record(state: Mapping[str, Any], failure: failures.Failure) -> Recorded:
    training, poll = _mapping(state.get("training")), _mapping(state.get("poll"))
    if training and poll:
        failure = failure.with_error(failures.training_error(failure.error, training, poll))
    model, process_id = failures.training_identity(state, training, failure.raw_key)
    record = failures.build_training_failure_record(
        failure, model=model, process_id=process_id, training=training, poll=poll, recorded_at=now()
    )
    key = keys.training_failure_key(failure.raw_key, model, process_id, failure.execution_id)
    return failure, record, key


# Per workflow: its record and the metric a failure counts in.
_WORKFLOWS: dict[str, tuple[Callable[[Mapping[str, Any], failures.Failure], Recorded], str]] = {
    failures.RETRAIN: (_retrain_record, "JobsFailed"),
    failures.TRAINING: (_training_record, "TrainingWatchesFailed"),
}


def record_failure_step(
    state: Mapping[str, Any], execution_id: str, *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Write ``failed/<model>/<rest of key>.json`` for a failed execution of either workflow."""
    settings = settings or PipelineSettings.from_env()
    workflow = failures.TRAINING if failures.is_training_state(state) else failures.RETRAIN
    build_record, metric = _WORKFLOWS[workflow]
    failure, record, key = build_record(state, failures.Failure.from_state(state, execution_id))
    bucket = output_bucket(settings, failure.source)
    write_json(aws_client("s3"), bucket, key, record)
    error = failure.error
    output = {
        "failure_key": key,
        "error": error.name,
        "message": error.message,
        "step": failure.step,
        "execution_id": execution_id,  # an Upload failure's state has no top-level execution_id
        "notification": failures.failure_notification(
            record, bucket=bucket, failure_key=key, workflow=workflow
        ),
    }
    return StepOutput(
        output,
        [(metric, MetricUnit.Count, 1)],
        log="Failure recorded",
        log_extra={"failure_key": key, "error": error.name, "step": failure.step},
    )
