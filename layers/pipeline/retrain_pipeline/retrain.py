"""The retrain workflow's steps, one per Lambda function; the handlers only parse, call and return.

Each step returns a ``StepOutput``: ``output`` is what the state machine stores (ids and keys only, see
docs/architecture.md for the shapes) and ``metrics`` what the handler publishes.
"""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from prediction_one import JobState, PredictionOneClient
from prediction_one import errors as p1_errors
from prediction_one.zipbuild import check_train_eval_layout

from retrain_pipeline import records
from retrain_pipeline.aws import aws_client  # re-exported: the steps and tests share it
from retrain_pipeline.encoding import check_encoding
from retrain_pipeline.errors import (
    BadZipLayout,
    EmptyObject,
    JobDeadlineExceeded,
    JobFailed,
    ResultNotAvailable,
    SourceObjectNotFound,
)
from retrain_pipeline.idempotency import once_per_request
from retrain_pipeline.polling import initial_poll, iso, next_poll
from retrain_pipeline.s3io import S3MultipartWriter, object_exists, open_source, zip_entries
from retrain_pipeline.secrets import ModelConfig, model_config
from retrain_pipeline.settings import INCOMING_PREFIX, PipelineSettings
from retrain_pipeline.source import SourceObject, check_prefix, decoded_key, parse_event, validate
from retrain_pipeline.switching import NEWER_ALREADY_SWITCHED, GateResult, SwitchGate, SwitchOrder

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_PREFIX = "retrain-upload"
MAX_ENTRIES_IN_STATE = 100
DEFAULT_RESULT_NAME = "result.bin"

Metric = tuple[str, MetricUnit, float]


@dataclass(frozen=True)
class StepOutput:
    output: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _api(config: ModelConfig, settings: PipelineSettings) -> PredictionOneClient:
    return PredictionOneClient(config.api_key, settings.client)


def _output_bucket(settings: PipelineSettings, source: SourceObject | None) -> str:
    if settings.data_bucket:
        return settings.data_bucket
    if source is not None:
        return source.bucket
    return settings.required("DATA_BUCKET")


# Upload


def resolve_source(s3: Any, source: SourceObject) -> SourceObject:
    """The object the event means, whichever way its key was encoded.

    EventBridge sends keys as they are; S3's other notification formats URL-encode them. A key whose
    URL-decoded form is the same needs no look-up. Otherwise the key as sent wins when that object
    exists, then the decoded key; neither is ``SourceObjectNotFound`` naming both forms."""
    decoded = decoded_key(source.key)
    if decoded == source.key or object_exists(s3, source.bucket, source.key):
        return source
    if object_exists(s3, source.bucket, decoded):
        logger.info("The event's key is URL-encoded; using the decoded key", extra={"key": decoded})
        return source.with_key(decoded)
    raise SourceObjectNotFound(source.bucket, source.key, decoded)


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
    """A3: the job left the "URL issued, nothing uploaded" status, so an upload did arrive."""
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
    accepted_at = iso(_now())
    client = _api(config, settings)
    for attempt in range(1, settings.upload_attempts + 1):
        target = client.get_upload_url(source.filename)
        try:
            size = _upload(client, target.upload_url, target.retrain_job_id, source, settings)
            break
        except p1_errors.UrlExpired:
            # A3: the URL expired before the file arrived, so that job never started. Only a new
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
        "uploaded_at": iso(_now()),
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
    duplicate = stored["execution_id"] != execution_id
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
    output = {
        "source": source.to_dict(),
        "job": job,
        "poll": initial_poll(datetime.fromisoformat(stored["uploaded_at"].replace("Z", "+00:00")), settings),
        "duplicate": duplicate,
        "execution_id": execution_id,
    }
    if duplicate:
        output["created_by_execution"] = stored["execution_id"]
    return StepOutput(output, metrics)


# CheckStatus


def check_status_step(
    job: Mapping[str, Any], poll: Mapping[str, Any], *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Ask the job's status once and compute the next poll (or finished/failed/deadline)."""
    settings = settings or PipelineSettings.from_env()
    config = model_config(job["model"], settings)
    answer = _api(config, settings).get_retrain_job(job["retrain_job_id"])
    new_poll = next_poll(
        poll,
        answer.status,
        JobState(answer.state).value,
        _now(),
        settings,
        message=answer.message,
        model_id=answer.model_id,
    )
    metrics: list[Metric] = []
    if new_poll["state"] == JobState.FINISHED:
        metrics.append(("JobsFinished", MetricUnit.Count, 1))
    return StepOutput(new_poll, metrics)


# Archive


def result_filename(download_url: str) -> str:
    """The results file's name, from the download URL's path (never its query)."""
    name = posixpath.basename(unquote(urlsplit(download_url).path))
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\\/").strip()
    if not name or name in {".", ".."}:
        return DEFAULT_RESULT_NAME
    if name == records.SUMMARY_NAME:
        return f"result-{name}"
    return name


def download_to_s3(
    client: PredictionOneClient,
    s3: Any,
    bucket: str,
    fresh_url: Callable[[], str],
    key_for: Callable[[str], str],
    log_extra: Mapping[str, str],
) -> tuple[str, str, int]:
    """A4: ask for a fresh presigned URL right before streaming it into S3 (multipart); on an expired URL
    ask for another once. Returns the result's file name, its S3 key and its size."""
    for attempt in (1, 2):
        url = fresh_url()
        name = result_filename(url)
        key = key_for(name)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        writer = S3MultipartWriter(s3, bucket, key, content_type=content_type)
        try:
            size = client.download(url, writer)
            writer.close()
        except p1_errors.UrlExpired:
            writer.abort()
            if attempt == 2:
                raise
            logger.info("Result URL expired; asking for a fresh one", extra=dict(log_extra))
            continue
        except BaseException:
            writer.abort()
            raise
        return name, key, size
    raise AssertionError("unreachable: the second attempt returns or raises")


def _download_result(
    client: PredictionOneClient, s3: Any, bucket: str, model: str, retrain_job_id: str
) -> tuple[str, str, int]:
    def fresh_url() -> str:
        answer = client.get_retrain_job(retrain_job_id)
        if JobState(answer.state) != JobState.FINISHED or not answer.download_url:
            raise ResultNotAvailable(model, retrain_job_id, answer.status)
        return answer.download_url

    return download_to_s3(
        client,
        s3,
        bucket,
        fresh_url,
        lambda name: records.result_key(model, retrain_job_id, name),
        {"retrain_job_id": retrain_job_id},
    )


def _entries(s3: Any, bucket: str, key: str, size: int) -> list[str]:
    try:
        return zip_entries(s3, bucket, key, size=size)
    except zipfile.BadZipFile:
        return []


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
    bucket = _output_bucket(settings, src)
    s3 = aws_client("s3")
    config = model_config(model, settings)
    name, key, size = _download_result(_api(config, settings), s3, bucket, model, retrain_job_id)
    entries = _entries(s3, bucket, key, size)
    summary = records.build_summary(
        source=src,
        job=job,
        poll=poll,
        execution_id=execution_id,
        result_key=key,
        result_size=size,
        result_filename=name,
        entries=entries,
        archived_at=_now(),
    )
    summary_key = records.summary_key(model, retrain_job_id)
    records.write_json(s3, bucket, summary_key, summary)
    output = {
        "result_key": key,
        "summary_key": summary_key,
        "size": size,
        "entries": entries[:MAX_ENTRIES_IN_STATE],
    }
    if len(entries) > MAX_ENTRIES_IN_STATE:
        output["entries_total"] = len(entries)
    return StepOutput(output, [("BytesArchived", MetricUnit.Bytes, float(size))])


# SwitchModel


def _summary_missing(key: str) -> None:
    logger.warning("summary.json not found; switch outcome not recorded there", extra={"summary_key": key})


def _record_switch(s3: Any, bucket: str, key: str, switch: Mapping[str, Any]) -> None:
    # A GET of a missing key answers 403 (not 404) without an unscoped s3:ListBucket: list first.
    if not object_exists(s3, bucket, key):
        _summary_missing(key)
        return
    try:
        summary = records.read_json(s3, bucket, key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404"}:
            raise
        _summary_missing(key)
        return
    summary["switched"] = bool(switch["switched"])
    summary["switch"] = dict(switch)
    records.write_json(s3, bucket, key, summary)


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
            _api(model_config(model, settings), settings).update_model(retrain_job_id)
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
    bucket = _output_bucket(settings, src)
    summary_key = (archive or {}).get("summary_key") or records.summary_key(model, retrain_job_id)
    _record_switch(
        aws_client("s3"), bucket, summary_key, {**outcome, "at": iso(_now()), "execution_id": execution_id}
    )
    metrics: list[Metric] = [("ModelsSwitched", MetricUnit.Count, 1)] if result is GateResult.ACQUIRED else []
    return StepOutput(outcome, metrics)


# RecordFailure


def _failure_source(state: Mapping[str, Any]) -> tuple[SourceObject | None, str | None]:
    if isinstance(state.get("source"), Mapping):
        try:
            source = SourceObject.from_dict(state["source"])
            return source, source.key
        except ValueError:
            pass
    try:
        source = parse_event(state)
        return source, source.key
    except ValueError:
        pass
    detail = state.get("detail")
    raw_object = detail.get("object") if isinstance(detail, Mapping) else None
    key = raw_object.get("key") if isinstance(raw_object, Mapping) else None
    return None, key if isinstance(key, str) and key else None


def _job_error(
    error: records.StepError, job: Mapping[str, Any], poll: Mapping[str, Any]
) -> records.StepError:
    """Put the job's own status and message into the JobFailed / JobDeadlineExceeded the ASL raised."""
    model, retrain_job_id = job.get("model", "?"), job.get("retrain_job_id", "?")
    if error.name == "JobFailed":
        detail = JobFailed(model, retrain_job_id, str(poll.get("status")), poll.get("message"))
    elif error.name == "JobDeadlineExceeded":
        detail = JobDeadlineExceeded(model, retrain_job_id, poll.get("status"), str(poll.get("deadline_at")))
    else:
        return error
    return records.StepError(error.name, records.scrub(detail.message))


def record_failure_step(
    state: Mapping[str, Any], execution_id: str, *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Write ``failed/<model>/<rest of key>.json`` for a failed execution."""
    from retrain_pipeline import training  # imported here: training builds on this module

    if training.is_training_state(state):  # the training watcher shares this step
        return training.record_failure_step(state, execution_id, settings=settings)
    settings = settings or PipelineSettings.from_env()
    error = records.StepError.from_asl(state.get("error"))
    job = state.get("job") if isinstance(state.get("job"), Mapping) else None
    poll = state.get("poll") if isinstance(state.get("poll"), Mapping) else None
    if job and poll:
        error = _job_error(error, job, poll)
    source, raw_key = _failure_source(state)
    step = str(state.get("failed_step") or "Unknown")
    record = records.build_failure_record(
        error=error,
        step=step,
        execution_id=execution_id,
        source=source,
        raw_key=raw_key,
        job=job,
        poll=poll,
        recorded_at=_now(),
    )
    execution_name = execution_id.rsplit(":", 1)[-1] or "execution"
    key = records.failure_key(raw_key) if raw_key else f"failed/{records.UNKNOWN_MODEL}/{execution_name}.json"
    bucket = _output_bucket(settings, source)
    records.write_json(aws_client("s3"), bucket, key, record)
    output = {
        "failure_key": key,
        "error": error.name,
        "message": error.message,
        "step": step,
        "execution_id": execution_id,  # an Upload failure's state has no top-level execution_id
        "notification": records.failure_notification(
            record, bucket=bucket, failure_key=key, workflow="retrain"
        ),
    }
    return StepOutput(output, [("JobsFailed", MetricUnit.Count, 1)])
