"""Failure records: one ``failed/<model>/<rest>.json`` per failed source object (or training watch),
naming the error in plain words, what the documented row means and what to do, and the notification
``NotifyFailure`` publishes from it.

Records hold ids, keys, statuses and plain-words explanations; never an API key, never a presigned URL's
query string, never a stack trace.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from prediction_one import errors as p1_errors
from prediction_one.redaction import redact_text

from retrain_pipeline.errors import JobDeadlineExceeded, JobFailed, TrainingDeadlineExceeded, TrainingFailed
from retrain_pipeline.keys import has_control_characters, is_model_name, model_and_rest
from retrain_pipeline.settings import TRAINING_PREFIX
from retrain_pipeline.source import SourceObject, parse_event
from retrain_pipeline.step import TRAINING_STEPS
from retrain_pipeline.timestamps import iso

MAX_MESSAGE_CHARS = 4000
RETRAIN = "retrain"
TRAINING = "training"  # the workflow names records and notifications carry


def _documented_row(cls: type[p1_errors.PredictionOneError]) -> dict[str, Any]:
    code = cls.documented_code
    error = (
        p1_errors.INTERNAL_SERVER_ERROR
        if code == p1_errors.INTERNAL_SERVER_ERROR_CODE
        else p1_errors.BAD_REQUEST_ERROR
    )
    return {"code": code, "error": error, "message": cls.documented_message, "reason": cls.meaning}


# The error rows the API reference pages document, by the client's error class name.
DOCUMENTED_ERRORS: dict[str, dict[str, Any]] = {
    cls.__name__: _documented_row(cls) for cls in p1_errors.DOCUMENTED_ERRORS
}

_CHECK_KEY = "Check this model's API key in the secret (SECRET_ID), then upload the file again."
_REUPLOAD = "Fix the file and upload it again under incoming/<model>/."
ADVICE: dict[str, str] = {
    "ApiKeyInvalid": _CHECK_KEY,
    "CredentialInactive": _CHECK_KEY,
    "CredentialNotFound": _CHECK_KEY,
    "UserDeleted": "The Prediction One user behind this API key may be gone; check the account.",
    "ModelDeleted": "The model behind this API key may be gone; publish it again and update the secret.",
    "JobDeleted": "The retrain job was deleted on the Prediction One side; upload the file again.",
    "RetrainJobNotFound": "Prediction One does not know this retrain job; upload the file again.",
    "ClassifierNotFound": "The model API may have been deleted; the retrained model could not be switched.",
    "RetrainJobNotFinished": "The switch was asked before the job finished; replay the switch later.",
    "ConfigurationFileNotFound": "Prediction One lost the model's configuration file; contact its support.",
    "BadRequest": "Prediction One refused the request; see the message.",
    "AccessDenied": "Prediction One (or its gateway) denied access; check the API key and base URL.",
    "UploadRejected": "The upload URL refused the file; upload the file again.",
    "UrlExpired": "A presigned URL expired twice in a row; replay the step.",
    "UnexpectedResponse": "Prediction One answered something the client does not understand.",
    "ServerError": "Prediction One kept failing after all retries; replay later.",
    "RateLimited": "Prediction One kept rate-limiting after all retries; replay later.",
    "ConnectionFailed": "Prediction One could not be reached after all retries; check API_BASE_URL.",
    "UploadAnswerLost": "The upload's answer was lost and the job never started; upload the file again.",
    "EmptyObject": _REUPLOAD,
    "FolderMarker": "Nothing to do: a folder was created, not a file.",
    "UnsupportedFileType": _REUPLOAD,
    "KeyOutsideModelFolder": "Move the file to incoming/<model>/<name>.",
    "KeyOutsidePrefix": "Nothing to do for the file; check that the EventBridge rule only matches incoming/.",
    "SourceObjectNotFound": "The object named by the event is gone; put the file again under "
    "incoming/<model>/.",
    "BadZipLayout": "Zip train_src/<train>.csv and eval_src/<eval>.csv together and upload the zip again.",
    "ModelNotConfigured": "Add the model's API key to the secret (SECRET_ID), then upload the file again.",
    "SecretMalformed": "Fix the secret's JSON (SECRET_ID), then upload the file again.",
    "UnsupportedEncoding": 'Save the file as CSV in UTF-8 (Excel: "CSV UTF-8 (Comma delimited)") or '
    "Shift-JIS and upload it again under incoming/<model>/.",
    "ApiKeyMalformed": "Paste the model's API key again as plain ASCII (no spaces, line breaks or "
    "full-width characters) into the secret (SECRET_ID), then upload the file again.",
    "JobFailed": "Prediction One could not retrain with this file (see the message); fix the data and "
    "upload it again.",
    "JobDeadlineExceeded": "The job did not finish in time (JOB_DEADLINE_HOURS); check it in Prediction One.",
    "ResultNotAvailable": "The job finished without a results file; check it in Prediction One.",
    "ModelSwitchBusy": "Another switch of this model kept the gate; replay the switch later.",
    "States.Timeout": "A step ran out of time; replay it.",
}

_CHECK_TRAINING_KEY = "Check this model's API key in the secret (SECRET_ID), then start the watch again."
# The training watcher's advice where the retrain workflow's (ADVICE) would send the operator the wrong way.
ADVICE_OVERRIDES: dict[str, dict[str, str]] = {
    TRAINING: {
        "ApiKeyInvalid": _CHECK_TRAINING_KEY,
        "CredentialInactive": _CHECK_TRAINING_KEY,
        "CredentialNotFound": _CHECK_TRAINING_KEY,
        "BadRequest": "Prediction One refused the request; check that external_process_id belongs to this "
        "model's API key, then start the watch again.",
        "FolderMarker": "Nothing to do: a folder was created under training/, not a watch request.",
        "KeyOutsideModelFolder": "Put the request at training/<model>/<name>.json.",
        "BadTrainingRequest": 'Write the request as UTF-8 JSON {"external_process_id": "<id>"} and put it '
        "again.",
        "ModelNotConfigured": "Add the model's API key to the secret (SECRET_ID), then start the watch "
        "again.",
        "SecretMalformed": "Fix the secret's JSON (SECRET_ID), then start the watch again.",
        "TrainingFailed": "Prediction One could not train the model; check the training run in Prediction "
        "One.",
        "TrainingDeadlineExceeded": "The training did not finish in time (JOB_DEADLINE_HOURS); start the "
        "watch again once it has finished.",
        "TrainingResultNotAvailable": "The training finished without a results file; check it in Prediction "
        "One.",
        "UrlExpired": "The result URL expired twice in a row; start the watch again.",
    },
}


_API_KEY = re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+")


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove secrets, URL query strings (presigned signatures) and ``x-api-key`` values from ``text``."""
    return _API_KEY.sub(r"\1[redacted]", redact_text(text, secrets))


@dataclass(frozen=True)
class StepError:
    """An ASL error ``{"Error", "Cause"}`` in plain terms."""

    name: str
    message: str

    @classmethod
    def from_asl(cls, error: Mapping[str, Any] | None) -> StepError:
        """Parse ``$.error``; Cause is a Lambda error JSON (errorMessage, errorType, ...) or plain text."""
        if not error:
            return cls("Unknown", "the step failed without an error description")
        name = str(error.get("Error") or "Unknown")
        cause = error.get("Cause")
        message = ""
        if isinstance(cause, str) and cause.strip():
            try:
                parsed = json.loads(cause)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                message = str(parsed.get("errorMessage") or "")
                name = (
                    str(parsed.get("errorType") or name) if name in {"Unknown", "States.TaskFailed"} else name
                )
            else:
                message = cause
        elif isinstance(cause, Mapping):
            message = str(cause.get("errorMessage") or "")
        message = scrub(message.strip() or f"{name} (no message)")
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        return cls(name, message)


def explain(name: str, workflow: str = RETRAIN) -> dict[str, Any]:
    """Plain-words help for an error name: the documented row (if any) and what to do (the workflow's
    own advice first, then the shared table)."""
    row = DOCUMENTED_ERRORS.get(name)
    advice = ADVICE_OVERRIDES.get(workflow, {}).get(name) or ADVICE.get(name)
    if advice is None and name.startswith(("Lambda.", "States.")):
        advice = "The step failed in AWS itself; replay the execution."
    return {"documented_error": dict(row) if row else None, "advice": advice or "See the message."}


def is_training_state(state: Mapping[str, Any]) -> bool:
    """True for a watcher execution's state: it has a ``training`` section or failed in a watcher step."""
    return isinstance(state.get("training"), Mapping) or state.get("failed_step") in TRAINING_STEPS


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def failure_source(state: Mapping[str, Any]) -> tuple[SourceObject | None, str | None]:
    """The source object as far as the failed execution got, and the raw key when only that is known."""
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
    key = _mapping(_mapping(state.get("detail")).get("object")).get("key")
    return None, key if isinstance(key, str) and key else None


@dataclass(frozen=True)
class Failure:
    """What any failed execution's state tells: the error, the step that failed, the execution, and the
    source object (or only its raw key) as far as the execution got."""

    error: StepError
    step: str
    execution_id: str
    source: SourceObject | None
    raw_key: str | None

    @classmethod
    def from_state(cls, state: Mapping[str, Any], execution_id: str) -> Failure:
        source, raw_key = failure_source(state)
        step = str(state.get("failed_step") or "Unknown")
        return cls(StepError.from_asl(state.get("error")), step, execution_id, source, raw_key)

    def with_error(self, error: StepError) -> Failure:
        return replace(self, error=error)


# The retrain workflow's record


def job_error(error: StepError, job: Mapping[str, Any], poll: Mapping[str, Any]) -> StepError:
    """Put the job's own status and message into the JobFailed / JobDeadlineExceeded the ASL raised."""
    model, retrain_job_id = job.get("model", "?"), job.get("retrain_job_id", "?")
    if error.name == "JobFailed":
        detail = JobFailed(model, retrain_job_id, str(poll.get("status")), poll.get("message"))
    elif error.name == "JobDeadlineExceeded":
        detail = JobDeadlineExceeded(model, retrain_job_id, poll.get("status"), str(poll.get("deadline_at")))
    else:
        return error
    return StepError(error.name, scrub(detail.message))


def replay_instructions(source: SourceObject | None) -> dict[str, str]:
    if source is None:
        return {"how": "Upload the file again under incoming/<model>/ to start a new retrain."}
    uri = shlex.quote(source.uri)
    return {
        "how": (
            "Fix the cause, then put the file again at the same key: a new object version starts a new "
            "retrain job (without bucket versioning an unchanged file keeps its etag and maps to the "
            "earlier job for IDEMPOTENCY_EXPIRY_HOURS)."
        ),
        "command": f"aws s3 cp {uri} {uri} --metadata-directive REPLACE",
    }


def build_failure_record(
    failure: Failure,
    *,
    job: Mapping[str, Any] | None,
    poll: Mapping[str, Any] | None,
    recorded_at: datetime,
) -> dict[str, Any]:
    """The content of ``failed/<model>/<rest>.json``."""
    error, source, raw_key = failure.error, failure.source, failure.raw_key
    model = (job or {}).get("model")
    if model is None and (source or raw_key):
        model = model_and_rest(source.key if source else str(raw_key))[0]
    return {
        "error": error.name,
        "message": error.message,
        **explain(error.name),
        "step": failure.step,
        "execution_id": failure.execution_id,
        "model": model,
        "source": source.to_dict() if source else ({"key": raw_key} if raw_key else None),
        "retrain_job_id": (job or {}).get("retrain_job_id"),
        "job_status": (poll or {}).get("status"),
        "timings": {
            "event_time": (source.event_time or None) if source else None,
            "uploaded_at": (job or {}).get("uploaded_at"),
            "last_checked_at": (poll or {}).get("checked_at"),
            "recorded_at": iso(recorded_at),
        },
        "replay": replay_instructions(source),
    }


# The training watcher's record


def training_error(error: StepError, training: Mapping[str, Any], poll: Mapping[str, Any]) -> StepError:
    """Put the run's status and deadline into the TrainingFailed / TrainingDeadlineExceeded the ASL raised."""
    model, process_id = str(training.get("model", "?")), str(training.get("external_process_id", "?"))
    if error.name == "TrainingFailed":
        detail: Exception = TrainingFailed(model, process_id, str(poll.get("status")))
    elif error.name == "TrainingDeadlineExceeded":
        detail = TrainingDeadlineExceeded(model, process_id, poll.get("status"), str(poll.get("deadline_at")))
    else:
        return error
    return StepError(error.name, scrub(str(detail)))


def training_identity(
    state: Mapping[str, Any], training: Mapping[str, Any], raw_key: str | None
) -> tuple[str | None, str | None]:
    """``(model, external_process_id)`` as far as the failed execution got."""
    model = training.get("model")
    process_id = training.get("external_process_id")
    if not is_model_name(model):
        model = model_and_rest(raw_key, TRAINING_PREFIX)[0] if raw_key else state.get("model")
    if not is_model_name(model):
        model = None
    if not isinstance(process_id, str) or not process_id:
        process_id = state.get("external_process_id") if raw_key is None else None
    if not isinstance(process_id, str) or not process_id.strip() or has_control_characters(process_id):
        process_id = None
    return model, process_id.strip() if process_id else None


def _state_machine_arn(execution_id: str) -> str | None:
    """``arn:...:stateMachine:<name>`` from ``arn:...:execution:<name>:<execution>``."""
    parts = execution_id.split(":")
    if len(parts) == 8 and parts[:3] == ["arn", parts[1], "states"] and parts[5] == "execution":
        return ":".join([*parts[:5], "stateMachine", parts[6]])
    return None


def training_replay(
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


def build_training_failure_record(
    failure: Failure,
    *,
    model: str | None,
    process_id: str | None,
    training: Mapping[str, Any],
    poll: Mapping[str, Any],
    recorded_at: datetime,
) -> dict[str, Any]:
    """The content of a failed watch's ``failed/<model>/...json``."""
    error, source, raw_key = failure.error, failure.source, failure.raw_key
    return {
        "workflow": TRAINING,
        "error": error.name,
        "message": error.message,
        **explain(error.name, TRAINING),
        "step": failure.step,
        "execution_id": failure.execution_id,
        "model": model,
        "external_process_id": process_id,
        "source": source.to_dict() if source else ({"key": raw_key} if raw_key else None),
        "training_status": poll.get("status"),
        "timings": {
            "event_time": (source.event_time or None) if source else None,
            "requested_at": training.get("requested_at"),
            "last_checked_at": poll.get("checked_at"),
            "recorded_at": iso(recorded_at),
        },
        "replay": training_replay(source, model, process_id, failure.execution_id),
    }


# The notification


MAX_NOTIFIED_MESSAGE_CHARS = 500


def notified_message(message: str) -> str:
    """The error message as a notification carries it: its first line, short, without secrets."""
    first = scrub(message).strip().splitlines()[0] if message.strip() else ""
    if len(first) > MAX_NOTIFIED_MESSAGE_CHARS:
        first = first[: MAX_NOTIFIED_MESSAGE_CHARS - 1] + "…"
    return first


def failure_notification(
    record: Mapping[str, Any], *, bucket: str, failure_key: str, workflow: str
) -> dict[str, Any]:
    """The message NotifyFailure publishes, built from the failure record: file, model, job, error name,
    what it means in plain words and where the record is. Never the execution state or a Lambda Cause."""
    source = record.get("source") if isinstance(record.get("source"), Mapping) else {}
    key = source.get("key")
    documented = record.get("documented_error")
    notification = {
        "outcome": "FAILED",
        "workflow": workflow,
        "file": f"s3://{source.get('bucket') or bucket}/{key}" if key else None,
        "model": record.get("model"),
        "error": record.get("error"),
        "message": notified_message(str(record.get("message") or "")),
        "documented_error": dict(documented) if isinstance(documented, Mapping) else None,
        "advice": record.get("advice"),
        "failure_record": f"s3://{bucket}/{failure_key}",
        "step": record.get("step"),
        "execution_id": record.get("execution_id"),
    }
    for name in ("retrain_job_id", "external_process_id"):
        if name in record:
            notification[name] = record[name]
    return notification
