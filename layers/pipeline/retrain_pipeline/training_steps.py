"""The training watcher's steps (``statemachine/train_watch.asl.json``): StartWatch, CheckTraining and
ArchiveTraining, one per Lambda function.

A watch starts from ``training/<model>/<name>.json`` holding ``{"external_process_id": "<id>"}`` (the S3
"Object Created" event) or from ``{"model": "<model>", "external_process_id": "<id>"}`` given to the state
machine directly (``watch_request``). It polls ``GET models/results`` on the retrain workflow's schedule and
deadline, archives ``result_url`` to ``results/<model>/training/<external_process_id>/`` with a
``summary.json`` and leaves failures to the shared RecordFailure function (``record_failure``).
State shapes: docs/architecture.md, "Training watcher".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from prediction_one import JobState, PredictionOneClient

from retrain_pipeline import keys
from retrain_pipeline.archive import ArchivedResult, archive_output, archive_result, build_training_summary
from retrain_pipeline.aws import aws_client
from retrain_pipeline.errors import TrainingResultNotAvailable
from retrain_pipeline.failures import TRAINING
from retrain_pipeline.idempotency import claimed_output, is_duplicate, once_per_request
from retrain_pipeline.polling import initial_poll, next_poll
from retrain_pipeline.s3io import read_json, write_json
from retrain_pipeline.secrets import model_config
from retrain_pipeline.settings import PipelineSettings
from retrain_pipeline.source import SourceObject
from retrain_pipeline.step import Metric, StepOutput, api_client, now, output_bucket, poll_log
from retrain_pipeline.timestamps import iso, parse_iso
from retrain_pipeline.watch_request import parse_request

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_PREFIX = "training-watch"


def _claim(
    request: dict[str, str],  # the idempotency key: bucket, key, version id or etag of the request object
    *,
    model: str,
    external_process_id: str,
    execution_id: str,
) -> dict[str, Any]:
    """Make ``execution_id`` the owner of the watch of one request object version (``once_per_request``)."""
    return {
        "model": model,
        "external_process_id": external_process_id,
        "requested_at": iso(now()),
        "execution_id": execution_id,
    }


def _check(
    client: PredictionOneClient,
    training: Mapping[str, Any],
    poll: Mapping[str, Any],
    settings: PipelineSettings,
) -> dict[str, Any]:
    """Ask endpoint 4 once and compute the next poll (running/finished/failed/deadline)."""
    answer = client.get_training_result(training["external_process_id"])
    new_poll = next_poll(poll, answer.status, JobState(answer.state).value, now(), settings)
    del new_poll["message"], new_poll["model_id"]  # retrain fields; endpoint 4 has neither
    new_poll["created_datetime"] = answer.created_datetime
    new_poll["updated_datetime"] = answer.updated_datetime
    return new_poll


def _finished_metric(poll: Mapping[str, Any]) -> list[Metric]:
    return [("TrainingsFinished", MetricUnit.Count, 1)] if poll["state"] == JobState.FINISHED else []


def _training(training: Mapping[str, Any]) -> tuple[str, str]:
    try:
        return str(training["model"]), str(training["external_process_id"])
    except (KeyError, TypeError) as missing:
        raise ValueError(f"the training state has no {missing.args[0]!r} field") from None


# StartWatch


def start_watch_step(
    request: object,
    execution_id: str,
    *,
    lambda_context: Any | None = None,
    settings: PipelineSettings | None = None,
) -> StepOutput:
    """Read and check the request, claim it (once per request object version), then poll once."""
    settings = settings or PipelineSettings.from_env()
    watch = parse_request(request)
    config = model_config(watch.model, settings)
    claim = {
        "model": watch.model,
        "external_process_id": watch.external_process_id,
        "execution_id": execution_id,
    }
    if watch.source is not None:
        source = watch.source
        stored = once_per_request(
            _claim, key_prefix=IDEMPOTENCY_KEY_PREFIX, settings=settings, lambda_context=lambda_context
        )(request={"bucket": source.bucket, "key": source.key, "version": source.version}, **claim)
    else:  # a direct start is named by its caller: Step Functions refuses a second execution of that name
        stored = _claim({}, **claim)
    duplicate = is_duplicate(stored, execution_id)
    training = {name: stored[name] for name in ("model", "external_process_id", "requested_at")}
    poll = initial_poll(parse_iso(stored["requested_at"]), settings)
    metrics: list[Metric] = []
    if not duplicate:
        poll = _check(api_client(config, settings), training, poll, settings)
        metrics = [("TrainingWatchesStarted", MetricUnit.Count, 1), *_finished_metric(poll)]
    output = claimed_output(
        stored,
        execution_id,
        source=watch.source.to_dict() if watch.source else None,
        training=training,
        poll=poll,
    )
    return StepOutput(
        output,
        metrics,
        log="Duplicate event: the training run is already watched" if duplicate else "Training watch started",
        log_extra={
            "model": training["model"],
            "external_process_id": training["external_process_id"],
            "status": poll["status"],
            "state": poll["state"],
        },
        correlation_id=training["external_process_id"],
    )


# CheckTraining


def check_training_step(
    training: Mapping[str, Any], poll: Mapping[str, Any], *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Ask for the training run's status once and compute the next poll."""
    settings = settings or PipelineSettings.from_env()
    model, _ = _training(training)
    new_poll = _check(api_client(model_config(model, settings), settings), training, poll, settings)
    return StepOutput(
        new_poll, _finished_metric(new_poll), log="Training run checked", log_extra=poll_log(new_poll)
    )


# ArchiveTraining


def _result_url(client: PredictionOneClient, model: str, external_process_id: str) -> str:
    """A fresh presigned URL of the finished training run's results file."""
    answer = client.get_training_result(external_process_id)
    if JobState(answer.state) != JobState.FINISHED or not answer.result_url:
        raise TrainingResultNotAvailable(model, external_process_id, answer.status)
    return answer.result_url


def _archived_summary(s3: Any, bucket: str, key: str) -> ArchivedResult | None:
    """The result an earlier archive of the same training run described in summary.json (None if there
    is none)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    if not any(item["Key"] == key for item in listed.get("Contents", [])):
        return None
    try:
        summary = read_json(s3, bucket, key)
    except (ClientError, ValueError):
        logger.warning("Unreadable summary.json; archiving again", extra={"summary_key": key})
        return None
    result = summary.get("result") if isinstance(summary, dict) else None
    if not isinstance(result, dict) or not result.get("key"):
        return None
    return ArchivedResult(
        str(result.get("filename") or ""),
        result["key"],
        int(result.get("size") or 0),
        list(result.get("entries") or []),
    )


def _archived(output: dict[str, Any], metrics: list[Metric]) -> StepOutput:
    return StepOutput(
        output,
        metrics,
        log="Training results already archived"
        if output["already_archived"]
        else "Training results archived",
        log_extra={"result_key": output["result_key"], "size": output["size"]},
    )


def archive_training_step(
    source: Mapping[str, Any] | None,
    training: Mapping[str, Any],
    poll: Mapping[str, Any],
    execution_id: str,
    *,
    settings: PipelineSettings | None = None,
) -> StepOutput:
    """Stream ``result_url`` into ``results/<model>/training/<id>/`` and write ``summary.json``, once.

    A training run that already has a summary.json (a duplicate watch, or a retried step) is not
    downloaded again: the earlier archive is returned with ``already_archived: true``.
    """
    settings = settings or PipelineSettings.from_env()
    src = SourceObject.from_dict(source) if source else None
    model, process_id = _training(training)
    bucket = output_bucket(settings, src)
    s3 = aws_client("s3")
    summary_at = keys.training_summary_key(model, process_id)
    earlier = _archived_summary(s3, bucket, summary_at)
    if earlier is not None:
        logger.info("Training results already archived", extra={"summary_key": summary_at})
        return _archived(archive_output(earlier, summary_at, already_archived=True), [])
    client = api_client(model_config(model, settings), settings)
    result = archive_result(
        client,
        s3,
        bucket,
        lambda: _result_url(client, model, process_id),
        lambda name: keys.training_result_key(model, process_id, name),
        {"external_process_id": process_id},
    )
    summary = build_training_summary(
        source=src,
        training=training,
        poll=poll,
        execution_id=execution_id,
        result=result,
        archived_at=now(),
        workflow=TRAINING,
    )
    write_json(s3, bucket, summary_at, summary)
    metrics: list[Metric] = [
        ("TrainingResultsArchived", MetricUnit.Count, 1),
        ("TrainingBytesArchived", MetricUnit.Bytes, float(result.size)),
    ]
    return _archived(archive_output(result, summary_at, already_archived=False), metrics)
