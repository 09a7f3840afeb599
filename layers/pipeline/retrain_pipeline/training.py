"""The training-run watcher's steps (seed 004), one per Lambda task of ``statemachine/train_watch.asl.json``.

A watch starts from ``training/<model>/<name>.json`` holding ``{"external_process_id": "<id>"}`` (the S3
"Object Created" event) or from ``{"model": "<model>", "external_process_id": "<id>"}`` given to the state
machine directly. It polls ``GET models/results`` on the retrain workflow's schedule and deadline, archives
``result_url`` to ``results/<model>/training/<external_process_id>/`` with a ``summary.json`` and leaves
failures to the shared RecordFailure function (``record_failure_step`` here writes the training record).
State shapes: docs/architecture.md, "Training watcher". Like the retrain steps, each returns a
``StepOutput`` whose ``output`` holds ids and keys only.
"""

from __future__ import annotations

import json
import logging
import shlex
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError
from prediction_one import JobState, PredictionOneClient

from retrain_pipeline import records
from retrain_pipeline.errors import (
    BadTrainingRequest,
    FolderMarker,
    KeyOutsideModelFolder,
    TrainingDeadlineExceeded,
    TrainingFailed,
    TrainingResultNotAvailable,
)
from retrain_pipeline.idempotency import once_per_request
from retrain_pipeline.polling import initial_poll, iso, next_poll, parse_iso
from retrain_pipeline.retrain import Metric, StepOutput, aws_client, download_to_s3, resolve_source
from retrain_pipeline.s3io import zip_entries
from retrain_pipeline.secrets import ModelConfig, model_config
from retrain_pipeline.settings import RESULTS_PREFIX, TRAINING_PREFIX, PipelineSettings
from retrain_pipeline.source import SourceObject, check_prefix, parse_event

logger = logging.getLogger(__name__)

# The Lambda steps of the watcher; RecordFailure tells a training failure from a retrain one by them.
START_STEP = "StartWatch"
CHECK_STEP = "CheckTraining"
ARCHIVE_STEP = "ArchiveTraining"
TRAINING_STEPS = frozenset({START_STEP, CHECK_STEP, ARCHIVE_STEP})
WORKFLOW = "training"
RESULTS_FOLDER = "training"
IDEMPOTENCY_KEY_PREFIX = "training-watch"
REQUEST_SUFFIX = ".json"
MAX_REQUEST_BYTES = 64 * 1024
MAX_PROCESS_ID_CHARS = 512
MAX_MODEL_CHARS = 256
MAX_ENTRIES_IN_STATE = 100
DIRECT_INPUT = "the execution input"
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}

_CHECK_KEY = "Check this model's API key in the secret (SECRET_ID), then start the watch again."
# Where the retrain workflow's advice (records.ADVICE) would send the operator the wrong way.
TRAINING_ADVICE: dict[str, str] = {
    "ApiKeyInvalid": _CHECK_KEY,
    "CredentialInactive": _CHECK_KEY,
    "CredentialNotFound": _CHECK_KEY,
    "BadRequest": "Prediction One refused the request; check that external_process_id belongs to this "
    "model's API key, then start the watch again.",
    "FolderMarker": "Nothing to do: a folder was created under training/, not a watch request.",
    "KeyOutsideModelFolder": "Put the request at training/<model>/<name>.json.",
    "BadTrainingRequest": 'Write the request as UTF-8 JSON {"external_process_id": "<id>"} and put it again.',
    "ModelNotConfigured": "Add the model's API key to the secret (SECRET_ID), then start the watch again.",
    "SecretMalformed": "Fix the secret's JSON (SECRET_ID), then start the watch again.",
    "TrainingFailed": "Prediction One could not train the model; check the training run in Prediction One.",
    "TrainingDeadlineExceeded": "The training did not finish in time (JOB_DEADLINE_HOURS); start the watch "
    "again once it has finished.",
    "TrainingResultNotAvailable": "The training finished without a results file; check it in Prediction One.",
    "UrlExpired": "The result URL expired twice in a row; start the watch again.",
}


@dataclass(frozen=True)
class WatchRequest:
    """What to watch: the model (its API key), the training run, and the S3 object that asked (if any)."""

    model: str
    external_process_id: str
    source: SourceObject | None


def _now() -> datetime:
    return datetime.now(UTC)


def _api(config: ModelConfig, settings: PipelineSettings) -> PredictionOneClient:
    return PredictionOneClient(config.api_key, settings.client)


# Keys


def key_segment(external_process_id: str) -> str:
    """The process id as one S3 key segment: unchanged for ordinary ids, never ``/``, ``.`` or ``..``."""
    segment = quote(external_process_id, safe="-_.~")
    return segment.replace(".", "%2E") if segment in {".", ".."} else segment


def result_prefix(model: str, external_process_id: str) -> str:
    return f"{RESULTS_PREFIX}{model}/{RESULTS_FOLDER}/{key_segment(external_process_id)}/"


def result_key(model: str, external_process_id: str, filename: str) -> str:
    return result_prefix(model, external_process_id) + filename


def summary_key(model: str, external_process_id: str) -> str:
    return result_prefix(model, external_process_id) + records.SUMMARY_NAME


def training_key_parts(key: str) -> tuple[str | None, str]:
    """``(model, rest after training/<model>/)``; ``(None, key without training/)`` outside a model folder."""
    if not key.startswith(TRAINING_PREFIX):
        return None, key
    rest = key[len(TRAINING_PREFIX) :]
    model, slash, name = rest.partition("/")
    if not slash or not model.strip():
        return None, rest
    return model, name


# Reading the request


def _json_type(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _process_id(document: Mapping[str, Any], where: str) -> str:
    if "external_process_id" not in document:
        raise BadTrainingRequest(where, "it has no external_process_id")
    value = document["external_process_id"]
    if not isinstance(value, str) or not value.strip():
        raise BadTrainingRequest(
            where, f"external_process_id is a JSON {_json_type(value)}, not a non-empty string"
        )
    value = value.strip()
    if len(value) > MAX_PROCESS_ID_CHARS:
        raise BadTrainingRequest(
            where, f"external_process_id is longer than {MAX_PROCESS_ID_CHARS} characters"
        )
    if _has_control(value):
        raise BadTrainingRequest(
            where, "external_process_id contains a line break or another control character"
        )
    return value


def _valid_model(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(value.strip())
        and value == value.strip()
        and len(value) <= MAX_MODEL_CHARS
        and "/" not in value
        and value not in {".", ".."}
        and not _has_control(value)
    )


def _read_document(s3: Any, source: SourceObject) -> Any:
    """The request object's JSON, read from its version (at most MAX_REQUEST_BYTES)."""
    version = {"VersionId": source.version_id} if source.version_id else {}
    try:
        response = s3.get_object(Bucket=source.bucket, Key=source.key, **version)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchVersion", "404"}:
            raise BadTrainingRequest(source.uri, "the object no longer exists") from None
        raise
    with response["Body"] as body:
        data = body.read(MAX_REQUEST_BYTES + 1)
    if not data:
        raise BadTrainingRequest(source.uri, "the object is empty")
    if len(data) > MAX_REQUEST_BYTES:
        raise BadTrainingRequest(source.uri, f"the object is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadTrainingRequest(source.uri, "it is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:  # the message names the position, never the content
        raise BadTrainingRequest(
            source.uri, f"it is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None


def request_from_object(s3: Any, source: SourceObject) -> WatchRequest:
    """Check the key of a ``training/<model>/<name>.json`` object, then read its external_process_id."""
    if source.key.endswith("/"):
        raise FolderMarker(source.bucket, source.key)
    model, name = training_key_parts(source.key)
    if model is None:
        raise KeyOutsideModelFolder(source.bucket, source.key, TRAINING_PREFIX)
    if not name.lower().endswith(REQUEST_SUFFIX):
        raise BadTrainingRequest(source.uri, f"its name does not end in {REQUEST_SUFFIX}")
    if source.size == 0:
        raise BadTrainingRequest(source.uri, "the object is empty")
    document = _read_document(s3, source)
    if not isinstance(document, dict):
        raise BadTrainingRequest(source.uri, f"it holds a JSON {_json_type(document)}, not an object")
    named = document.get("model")
    if named is not None and named != model:
        raise BadTrainingRequest(
            source.uri, f"it names model {named!r} but lies in the folder of model {model!r}"
        )
    return WatchRequest(model, _process_id(document, source.uri), source)


def request_from_input(payload: object) -> WatchRequest:
    """A direct start: ``{"model": "<model>", "external_process_id": "<id>"}``."""
    if not isinstance(payload, Mapping):
        raise BadTrainingRequest(DIRECT_INPUT, f"it is a JSON {_json_type(payload)}, not an object")
    model = payload.get("model")
    if model is None:
        raise BadTrainingRequest(
            DIRECT_INPUT, 'it has no model; a direct start needs {"model": "<model>", "external_process_id"}'
        )
    if not _valid_model(model):
        raise BadTrainingRequest(
            DIRECT_INPUT,
            f"model must be a model folder name (no '/', no surrounding spaces, at most {MAX_MODEL_CHARS} "
            "characters)",
        )
    return WatchRequest(str(model), _process_id(payload, DIRECT_INPUT), None)


def parse_request(request: object) -> WatchRequest:
    """The watch request from the execution input: an S3 "Object Created" event or a direct start."""
    if isinstance(request, Mapping) and "detail" in request:
        try:
            source = parse_event(request)
        except ValueError as error:
            raise BadTrainingRequest(DIRECT_INPUT, str(error)) from None
        check_prefix(source, TRAINING_PREFIX)  # before any read: nothing outside training/ is ever touched
        s3 = aws_client("s3")
        return request_from_object(s3, resolve_source(s3, source))
    return request_from_input(request)


# StartWatch


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
        "requested_at": iso(_now()),
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
    new_poll = next_poll(poll, answer.status, JobState(answer.state).value, _now(), settings)
    del new_poll["message"], new_poll["model_id"]  # retrain fields; endpoint 4 has neither
    new_poll["created_datetime"] = answer.created_datetime
    new_poll["updated_datetime"] = answer.updated_datetime
    return new_poll


def _finished_metric(poll: Mapping[str, Any]) -> list[Metric]:
    return [("TrainingsFinished", MetricUnit.Count, 1)] if poll["state"] == JobState.FINISHED else []


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
    duplicate = stored["execution_id"] != execution_id
    training = {name: stored[name] for name in ("model", "external_process_id", "requested_at")}
    poll = initial_poll(parse_iso(stored["requested_at"]), settings)
    metrics: list[Metric] = []
    if not duplicate:
        poll = _check(_api(config, settings), training, poll, settings)
        metrics = [("TrainingWatchesStarted", MetricUnit.Count, 1), *_finished_metric(poll)]
    output: dict[str, Any] = {
        "source": watch.source.to_dict() if watch.source else None,
        "training": training,
        "poll": poll,
        "duplicate": duplicate,
        "execution_id": execution_id,
    }
    if duplicate:
        output["created_by_execution"] = stored["execution_id"]
    return StepOutput(output, metrics)


# CheckTraining


def _training(training: Mapping[str, Any]) -> tuple[str, str]:
    try:
        return str(training["model"]), str(training["external_process_id"])
    except (KeyError, TypeError) as missing:
        raise ValueError(f"the training state has no {missing.args[0]!r} field") from None


def check_training_step(
    training: Mapping[str, Any], poll: Mapping[str, Any], *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Ask for the training run's status once and compute the next poll."""
    settings = settings or PipelineSettings.from_env()
    model, _ = _training(training)
    new_poll = _check(_api(model_config(model, settings), settings), training, poll, settings)
    return StepOutput(new_poll, _finished_metric(new_poll))


# ArchiveTraining


def _download_result(
    client: PredictionOneClient, s3: Any, bucket: str, model: str, external_process_id: str
) -> tuple[str, str, int]:
    def fresh_url() -> str:
        answer = client.get_training_result(external_process_id)
        if JobState(answer.state) != JobState.FINISHED or not answer.result_url:
            raise TrainingResultNotAvailable(model, external_process_id, answer.status)
        return answer.result_url

    return download_to_s3(
        client,
        s3,
        bucket,
        fresh_url,
        lambda name: result_key(model, external_process_id, name),
        {"external_process_id": external_process_id},
    )


def _archived_summary(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The summary.json an earlier archive of the same training run wrote (None if there is none)."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    if not any(item["Key"] == key for item in listed.get("Contents", [])):
        return None
    try:
        summary = records.read_json(s3, bucket, key)
    except (ClientError, ValueError):
        logger.warning("Unreadable summary.json; archiving again", extra={"summary_key": key})
        return None
    result = summary.get("result") if isinstance(summary, dict) else None
    return summary if isinstance(result, dict) and result.get("key") else None


def _entries(s3: Any, bucket: str, key: str, size: int) -> list[str]:
    try:
        return zip_entries(s3, bucket, key, size=size)
    except zipfile.BadZipFile:
        return []


def _archive_output(
    result_key_: str, summary_key_: str, size: int, entries: list[str], *, already: bool
) -> dict[str, Any]:
    output: dict[str, Any] = {
        "result_key": result_key_,
        "summary_key": summary_key_,
        "size": size,
        "entries": entries[:MAX_ENTRIES_IN_STATE],
        "already_archived": already,
    }
    if len(entries) > MAX_ENTRIES_IN_STATE:
        output["entries_total"] = len(entries)
    return output


def build_summary(
    *,
    source: SourceObject | None,
    training: Mapping[str, Any],
    poll: Mapping[str, Any],
    execution_id: str,
    result_key: str,
    result_size: int,
    result_filename: str,
    entries: list[str],
    archived_at: datetime,
) -> dict[str, Any]:
    """The content of ``results/<model>/training/<external_process_id>/summary.json``."""
    return {
        "workflow": WORKFLOW,
        "model": training["model"],
        "external_process_id": training["external_process_id"],
        "status": poll.get("status"),
        "created_datetime": poll.get("created_datetime"),
        "updated_datetime": poll.get("updated_datetime"),
        "source": source.to_dict() if source else None,
        "execution_id": execution_id,
        "result": {"key": result_key, "filename": result_filename, "size": result_size, "entries": entries},
        "timings": {
            "event_time": (source.event_time or None) if source else None,
            "requested_at": training.get("requested_at"),
            "finished_at": poll.get("checked_at"),
            "archived_at": iso(archived_at),
        },
        "polls": int(poll.get("polls") or 0),
    }


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
    bucket = settings.data_bucket or (src.bucket if src else settings.required("DATA_BUCKET"))
    s3 = aws_client("s3")
    summary_at = summary_key(model, process_id)
    earlier = _archived_summary(s3, bucket, summary_at)
    if earlier is not None:
        result = earlier["result"]
        logger.info("Training results already archived", extra={"summary_key": summary_at})
        return StepOutput(
            _archive_output(
                result["key"],
                summary_at,
                int(result.get("size") or 0),
                list(result.get("entries") or []),
                already=True,
            )
        )
    client = _api(model_config(model, settings), settings)
    name, key, size = _download_result(client, s3, bucket, model, process_id)
    entries = _entries(s3, bucket, key, size)
    summary = build_summary(
        source=src,
        training=training,
        poll=poll,
        execution_id=execution_id,
        result_key=key,
        result_size=size,
        result_filename=name,
        entries=entries,
        archived_at=_now(),
    )
    records.write_json(s3, bucket, summary_at, summary)
    metrics: list[Metric] = [
        ("TrainingResultsArchived", MetricUnit.Count, 1),
        ("TrainingBytesArchived", MetricUnit.Bytes, float(size)),
    ]
    return StepOutput(_archive_output(key, summary_at, size, entries, already=False), metrics)


# RecordFailure (the retrain workflow's function hands training failures to this step)


def is_training_state(state: Mapping[str, Any]) -> bool:
    """True for a watcher execution's state: it has a ``training`` section or failed in a watcher step."""
    return isinstance(state.get("training"), Mapping) or state.get("failed_step") in TRAINING_STEPS


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _outcome_error(
    error: records.StepError, training: Mapping[str, Any], poll: Mapping[str, Any]
) -> records.StepError:
    """Put the run's status and deadline into the TrainingFailed / TrainingDeadlineExceeded the ASL raised."""
    model, process_id = str(training.get("model", "?")), str(training.get("external_process_id", "?"))
    if error.name == "TrainingFailed":
        detail: Exception = TrainingFailed(model, process_id, str(poll.get("status")))
    elif error.name == "TrainingDeadlineExceeded":
        detail = TrainingDeadlineExceeded(model, process_id, poll.get("status"), str(poll.get("deadline_at")))
    else:
        return error
    return records.StepError(error.name, records.scrub(str(detail)))


def _failure_source(state: Mapping[str, Any]) -> tuple[SourceObject | None, str | None]:
    if isinstance(state.get("source"), Mapping):
        try:
            source = SourceObject.from_dict(state["source"])
            return source, source.key
        except ValueError:
            pass
    if "detail" in state:
        try:
            source = parse_event(state)
            return source, source.key
        except ValueError:
            key = _mapping(_mapping(state.get("detail")).get("object")).get("key")
            return None, key if isinstance(key, str) and key else None
    return None, None


def _identity(
    state: Mapping[str, Any], training: Mapping[str, Any], raw_key: str | None
) -> tuple[str | None, str | None]:
    """``(model, external_process_id)`` as far as the failed execution got."""
    model = training.get("model")
    process_id = training.get("external_process_id")
    if not _valid_model(model):
        model = training_key_parts(raw_key)[0] if raw_key else state.get("model")
    if not _valid_model(model):
        model = None
    if not isinstance(process_id, str) or not process_id:
        process_id = state.get("external_process_id") if raw_key is None else None
    if not isinstance(process_id, str) or not process_id.strip() or _has_control(process_id):
        process_id = None
    return model, process_id.strip() if process_id else None


def _state_machine_arn(execution_id: str) -> str | None:
    """``arn:...:stateMachine:<name>`` from ``arn:...:execution:<name>:<execution>``."""
    parts = execution_id.split(":")
    if len(parts) == 8 and parts[:3] == ["arn", parts[1], "states"] and parts[5] == "execution":
        return ":".join([*parts[:5], "stateMachine", parts[6]])
    return None


def _replay(
    source: SourceObject | None, model: str | None, process_id: str | None, execution_id: str
) -> dict[str, Any]:
    if source is not None:
        uri = shlex.quote(source.uri)
        return {
            "how": "Fix the cause, then put the request again at the same key: a new object version starts "
            "a new watch (the same version is watched once for IDEMPOTENCY_EXPIRY_HOURS).",
            "command": f"aws s3 cp {uri} {uri} --metadata-directive REPLACE",
        }
    if model and process_id:
        payload = json.dumps({"model": model, "external_process_id": process_id}, ensure_ascii=False)
        machine = _state_machine_arn(execution_id) or "<TrainWatchStateMachineArn>"
        return {
            "how": "Fix the cause, then start the training watcher again with the same input.",
            "command": f"aws stepfunctions start-execution --state-machine-arn {shlex.quote(machine)} "
            f"--input {shlex.quote(payload)}",
        }
    return {
        "how": 'Start the training watcher with {"model": "<model>", "external_process_id": "<id>"}, or put '
        '{"external_process_id": "<id>"} at training/<model>/<name>.json.'
    }


def failure_key(raw_key: str | None, model: str | None, process_id: str | None, execution_id: str) -> str:
    """``failed/<model>/<rest of key>.json`` for a request object, ``failed/<model>/training/<id>.json``
    for a direct start (``_unknown`` without a model; the execution name without a process id)."""
    if raw_key:
        return records.model_failure_key(*training_key_parts(raw_key))
    name = key_segment(process_id) if process_id else (execution_id.rsplit(":", 1)[-1] or "execution")
    return records.model_failure_key(model, f"{RESULTS_FOLDER}/{name}")


def _explain(name: str) -> dict[str, Any]:
    explained = records.explain(name)
    if name in TRAINING_ADVICE:
        explained["advice"] = TRAINING_ADVICE[name]
    return explained


def record_failure_step(
    state: Mapping[str, Any], execution_id: str, *, settings: PipelineSettings | None = None
) -> StepOutput:
    """Write the failure record of a failed watch: ``failed/<model>/<rest of key>.json``."""
    settings = settings or PipelineSettings.from_env()
    error = records.StepError.from_asl(state.get("error"))
    training, poll = _mapping(state.get("training")), _mapping(state.get("poll"))
    if training and poll:
        error = _outcome_error(error, training, poll)
    source, raw_key = _failure_source(state)
    model, process_id = _identity(state, training, raw_key)
    step = str(state.get("failed_step") or "Unknown")
    record = {
        "workflow": WORKFLOW,
        "error": error.name,
        "message": error.message,
        **_explain(error.name),
        "step": step,
        "execution_id": execution_id,
        "model": model,
        "external_process_id": process_id,
        "source": source.to_dict() if source else ({"key": raw_key} if raw_key else None),
        "training_status": poll.get("status"),
        "timings": {
            "event_time": (source.event_time or None) if source else None,
            "requested_at": training.get("requested_at"),
            "last_checked_at": poll.get("checked_at"),
            "recorded_at": iso(_now()),
        },
        "replay": _replay(source, model, process_id, execution_id),
    }
    key = failure_key(raw_key, model, process_id, execution_id)
    bucket = settings.data_bucket or (source.bucket if source else settings.required("DATA_BUCKET"))
    records.write_json(aws_client("s3"), bucket, key, record)
    output = {
        "failure_key": key,
        "error": error.name,
        "message": error.message,
        "step": step,
        "execution_id": execution_id,
        "notification": records.failure_notification(
            record, bucket=bucket, failure_key=key, workflow=WORKFLOW
        ),
    }
    return StepOutput(output, [("TrainingWatchesFailed", MetricUnit.Count, 1)])
