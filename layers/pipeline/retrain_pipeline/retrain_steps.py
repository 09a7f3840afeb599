"""The retrain workflow's steps (``statemachine/retrain.asl.json``): Upload, CheckStatus, Archive and
SwitchModel, one per Lambda function. RecordFailure, shared with the training watcher, is in
``record_failure``; what the steps share is in ``step``, ``archive``, ``keys`` and ``source``.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from prediction_one import JobState, PredictionOneClient
from prediction_one import errors as p1_errors
from prediction_one.zipbuild import check_train_eval_layout

from retrain_pipeline import keys
from retrain_pipeline.archive import archive_output, archive_result, build_summary
from retrain_pipeline.aws import aws_client
from retrain_pipeline.encoding import check_encoding
from retrain_pipeline.errors import BadZipLayout, EmptyObject, ResultNotAvailable
from retrain_pipeline.idempotency import claimed_output, is_duplicate, once_per_request
from retrain_pipeline.polling import initial_poll, next_poll
from retrain_pipeline.s3io import object_exists, open_source, read_json, write_json, zip_entries
from retrain_pipeline.secrets import ModelConfig, model_config
from retrain_pipeline.settings import INCOMING_PREFIX, PipelineSettings
from retrain_pipeline.source import SourceObject, check_prefix, parse_event, resolve_source, validate
from retrain_pipeline.step import Metric, StepOutput, api_client, now, output_bucket, poll_log
from retrain_pipeline.switching import NEWER_ALREADY_SWITCHED, GateResult, SwitchGate, SwitchOrder
from retrain_pipeline.timestamps import iso, parse_iso

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_PREFIX = "retrain-upload"


# Upload


def check_zip_layout(s3: Any, source: SourceObject) -> list[str]:
    """Read the zip's entry names from S3 (ranged GETs) and check the train_src/eval_src layout."""
    try:
        names = zip_entries(s3, source.bucket, source.key, source.version_id, source.size)
    except zipfile.BadZipFile as error:
        raise BadZipLayout(
            source.bucket, source.key, [f"it is not a readable zip archive ({error})"]
        ) from None
    problems = check_train_eval_layout(names)
    if problems:
        raise BadZipLayout(source.bucket, source.key, problems)
    return names


def _job_started(client: PredictionOneClient, retrain_job_id: str, settings: PipelineSettings) -> bool:
    """The job left the "URL issued, nothing uploaded" status, so an upload did arrive."""
    status = client.get_retrain_job(retrain_job_id).status
    return bool(status) and status.strip().casefold() != settings.upload_pending_status


def _upload(
    client: PredictionOneClient,
    upload_url: str,
    retrain_job_id: str,
    source: SourceObject,
    settings: PipelineSettings,
) -> int:
    """Stream the object version to the upload URL; on a lost answer ask the job before trying again."""
    s3 = aws_client("s3")
    for attempt in range(1, settings.upload_attempts + 1):
        with open_source(s3, source.bucket, source.key, source.version_id) as body:
            length = len(body)
            if length == 0:
                raise EmptyObject(source.bucket, source.key)
            try:
                client.upload(upload_url, body, length)
                return length
            except (p1_errors.TransientError, p1_errors.UploadRejected) as error:
                if _job_started(client, retrain_job_id, settings):
                    logger.info(
                        "Upload answer not received but the job started",
                        extra={"retrain_job_id": retrain_job_id, "error": type(error).__name__},
                    )
                    return length
                if isinstance(error, p1_errors.UploadRejected) or attempt == settings.upload_attempts:
                    raise
                logger.warning(
                    "Upload did not reach Prediction One; sending the file again",
                    extra={
                        "retrain_job_id": retrain_job_id,
                        "attempt": attempt,
                        "error": type(error).__name__,
                    },
                )
    raise AssertionError("unreachable: the last attempt returns or raises")


def _create_job(
    request: dict[str, str],  # the idempotency key: bucket, key, version id or etag
    *,
    source: SourceObject,
    config: ModelConfig,
    execution_id: str,
    settings: PipelineSettings,
    outcome: dict[str, Any],
) -> dict[str, Any]:
    """Get an upload URL and upload the file: once per object version (``idempotency.once_per_request``)."""
    accepted_at = iso(now())
    client = api_client(config, settings)
    for attempt in range(1, settings.upload_attempts + 1):
        target = client.get_upload_url(source.filename)
        try:
            size = _upload(client, target.upload_url, target.retrain_job_id, source, settings)
            break
        except p1_errors.UrlExpired:
            # The URL expired before the file arrived, so that job never started. Only a new
            # upload URL (and with it a new job id) can take the file; the old job stays empty.
            if attempt == settings.upload_attempts:
                raise
            logger.warning(
                "Upload URL expired before the file arrived; asking for a new one",
                extra={"abandoned_retrain_job_id": target.retrain_job_id, "attempt": attempt},
            )
    outcome.update(created=True, bytes=size)
    return {
        "model": config.model,
        "retrain_job_id": target.retrain_job_id,
        "filename": source.filename,
        "accepted_at": accepted_at,
        "uploaded_at": iso(now()),
        "auto_switch": config.auto_switch,
        "execution_id": execution_id,
    }


def upload_step(
    event: Mapping[str, Any],
    execution_id: str,
    *,
    lambda_context: Any | None = None,
    settings: PipelineSettings | None = None,
) -> StepOutput:
    """Validate the object, then create and feed its retrain job exactly once per object version."""
    settings = settings or PipelineSettings.from_env()
    source = parse_event(event)
    check_prefix(source, INCOMING_PREFIX)  # before any read: nothing outside incoming/ is ever touched
    source = resolve_source(aws_client("s3"), source)
    model = validate(source, settings.allowed_extensions)
    config = model_config(model, settings)
    if source.extension == ".zip":
        check_zip_layout(aws_client("s3"), source)
    check_encoding(aws_client("s3"), source)
    outcome: dict[str, Any] = {}
    request = {"bucket": source.bucket, "key": source.key, "version": source.version}
    stored = once_per_request(
        _create_job, key_prefix=IDEMPOTENCY_KEY_PREFIX, settings=settings, lambda_context=lambda_context
    )(
        request=request,
        source=source,
        config=config,
        execution_id=execution_id,
        settings=settings,
        outcome=outcome,
    )
    duplicate = is_duplicate(stored, execution_id)
    job = {
        name: stored[name] for name in ("model", "retrain_job_id", "filename", "uploaded_at", "auto_switch")
    }
    job["accepted_at"] = stored.get("accepted_at", stored["uploaded_at"])
    metrics: list[Metric] = [] if duplicate else [("FilesAccepted", MetricUnit.Count, 1)]
    if outcome.get("created"):
        metrics += [
            ("RetrainJobsCreated", MetricUnit.Count, 1),
            ("BytesUploaded", MetricUnit.Bytes, float(outcome["bytes"])),
        ]
    output = claimed_output(
        stored,
        execution_id,
        source=source.to_dict(),
        job=job,
        poll=initial_poll(parse_iso(stored["uploaded_at"]), settings),
    )
    return StepOutput(
        output,
        metrics,
        log="Duplicate event: the retrain job already exists" if duplicate else "Retrain job started",
        log_extra={"model": job["model"], "retrain_job_id": job["retrain_job_id"]},
        correlation_id=job["retrain_job_id"],
    )


# CheckStatus


def check_status_step(
    job: Mapping[str, Any], poll: Mapping[str, Any], *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Ask the job's status once and compute the next poll (or finished/failed/deadline)."""
    settings = settings or PipelineSettings.from_env()
    config = model_config(job["model"], settings)
    answer = api_client(config, settings).get_retrain_job(job["retrain_job_id"])
    new_poll = next_poll(
        poll,
        answer.status,
        JobState(answer.state).value,
        now(),
        settings,
        message=answer.message,
        model_id=answer.model_id,
    )
    metrics: list[Metric] = []
    if new_poll["state"] == JobState.FINISHED:
        metrics.append(("JobsFinished", MetricUnit.Count, 1))
    return StepOutput(new_poll, metrics, log="Retrain job checked", log_extra=poll_log(new_poll))


# Archive


def _download_url(client: PredictionOneClient, model: str, retrain_job_id: str) -> str:
    """A fresh presigned URL of the finished job's results file."""
    answer = client.get_retrain_job(retrain_job_id)
    if JobState(answer.state) != JobState.FINISHED or not answer.download_url:
        raise ResultNotAvailable(model, retrain_job_id, answer.status)
    return answer.download_url


def archive_step(
    source: Mapping[str, Any],
    job: Mapping[str, Any],
    poll: Mapping[str, Any],
    execution_id: str,
    *,
    settings: PipelineSettings | None = None,
) -> StepOutput:
    """Stream the results file into ``results/<model>/<job>/`` and write ``summary.json``."""
    settings = settings or PipelineSettings.from_env()
    src = SourceObject.from_dict(source)
    model, retrain_job_id = job["model"], job["retrain_job_id"]
    bucket = output_bucket(settings, src)
    s3 = aws_client("s3")
    client = api_client(model_config(model, settings), settings)
    result = archive_result(
        client,
        s3,
        bucket,
        lambda: _download_url(client, model, retrain_job_id),
        lambda name: keys.result_key(model, retrain_job_id, name),
        {"retrain_job_id": retrain_job_id},
    )
    summary = build_summary(
        source=src, job=job, poll=poll, execution_id=execution_id, result=result, archived_at=now()
    )
    summary_key = keys.summary_key(model, retrain_job_id)
    write_json(s3, bucket, summary_key, summary)
    return StepOutput(
        archive_output(result, summary_key),
        [("BytesArchived", MetricUnit.Bytes, float(result.size))],
        log="Results archived",
        log_extra={"result_key": result.key, "size": result.size},
    )


# SwitchModel


def _summary_missing(key: str) -> None:
    logger.warning("summary.json not found; switch outcome not recorded there", extra={"summary_key": key})


def _record_switch(s3: Any, bucket: str, key: str, switch: Mapping[str, Any]) -> None:
    # A GET of a missing key answers 403 (not 404) without an unscoped s3:ListBucket: list first.
    if not object_exists(s3, bucket, key):
        _summary_missing(key)
        return
    try:
        summary = read_json(s3, bucket, key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404"}:
            raise
        _summary_missing(key)
        return
    summary["switched"] = bool(switch["switched"])
    summary["switch"] = dict(switch)
    write_json(s3, bucket, key, summary)


def switch_step(
    source: Mapping[str, Any],
    job: Mapping[str, Any],
    execution_id: str,
    *,
    archive: Mapping[str, Any] | None = None,
    settings: PipelineSettings | None = None,
) -> StepOutput:
    """Publish the retrained model unless a newer file for the model was already switched."""
    settings = settings or PipelineSettings.from_env()
    src = SourceObject.from_dict(source)
    model, retrain_job_id = job["model"], job["retrain_job_id"]
    gate = SwitchGate(
        aws_client("dynamodb"), settings.required("STATE_TABLE"), model, settings.switch_lease_seconds
    )
    order = SwitchOrder.of(src)
    result = gate.acquire(order, execution_id, retrain_job_id)
    if result is GateResult.NEWER_SWITCHED:
        outcome = {"switched": False, "reason": NEWER_ALREADY_SWITCHED}
    elif result is GateResult.ALREADY_SWITCHED:
        outcome = {"switched": True, "reason": "this retrain job was already switched"}
    else:
        switched = False
        try:
            api_client(model_config(model, settings), settings).update_model(retrain_job_id)
            switched = True
        finally:
            gate.release(
                execution_id,
                switched=switched,
                order=order,
                retrain_job_id=retrain_job_id,
            )
        outcome = {"switched": True, "reason": "the retrained model was published"}
    logger.info("Switch decided", extra={"model": model, "retrain_job_id": retrain_job_id, **outcome})
    bucket = output_bucket(settings, src)
    summary_key = (archive or {}).get("summary_key") or keys.summary_key(model, retrain_job_id)
    _record_switch(
        aws_client("s3"), bucket, summary_key, {**outcome, "at": iso(now()), "execution_id": execution_id}
    )
    metrics: list[Metric] = [("ModelsSwitched", MetricUnit.Count, 1)] if result is GateResult.ACQUIRED else []
    return StepOutput(outcome, metrics)
