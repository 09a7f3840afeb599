"""What the pipeline leaves in S3: ``summary.json`` next to each archived result, and one failure record
per failed source object under ``failed/``.

Records hold ids, keys, statuses and plain-words explanations; never an API key, never a presigned URL's
query string, never a stack trace.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prediction_one import errors as p1_errors
from prediction_one.redaction import redact_text

from retrain_pipeline.polling import iso
from retrain_pipeline.settings import FAILED_PREFIX, RESULTS_PREFIX
from retrain_pipeline.source import SourceObject, relative_name

S3_MAX_KEY_BYTES = 1024
MAX_MESSAGE_CHARS = 4000
UNKNOWN_MODEL = "_unknown"
SUMMARY_NAME = "summary.json"
SWITCHING_OFF = "switching is off for this model"


def _documented_row(cls: type[p1_errors.PredictionOneError]) -> dict[str, Any]:
    code = cls.documented_code
    error = (
        p1_errors.INTERNAL_SERVER_ERROR
        if code == p1_errors.INTERNAL_SERVER_ERROR_CODE
        else p1_errors.BAD_REQUEST_ERROR
    )
    return {"code": code, "error": error, "message": cls.documented_message, "reason": cls.meaning}


# The documented error rows (seeds 000-004), by the client's error class name.
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

_API_KEY = re.compile(r"(?i)(x-api-key['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+")


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove secrets, URL query strings (presigned signatures) and ``x-api-key`` values from ``text``."""
    return _API_KEY.sub(r"\1[redacted]", redact_text(text, secrets))


def result_prefix(model: str, retrain_job_id: str) -> str:
    return f"{RESULTS_PREFIX}{model}/{retrain_job_id}/"


def summary_key(model: str, retrain_job_id: str) -> str:
    return result_prefix(model, retrain_job_id) + SUMMARY_NAME


def result_key(model: str, retrain_job_id: str, filename: str) -> str:
    return result_prefix(model, retrain_job_id) + filename


def _fit_key(prefix: str, rest: str, suffix: str) -> str:
    key = f"{prefix}{rest}{suffix}"
    if len(key.encode()) <= S3_MAX_KEY_BYTES:
        return key
    digest = hashlib.sha256(rest.encode()).hexdigest()[:16]
    budget = S3_MAX_KEY_BYTES - len(f"{prefix}-{digest}{suffix}".encode())
    head = rest.encode()[:budget].decode("utf-8", "ignore")
    return f"{prefix}{head}-{digest}{suffix}"


def failure_key(source_key: str) -> str:
    """``failed/<model>/<rest>.json`` (``failed/_unknown/...`` without a model), at most 1,024 bytes."""
    return model_failure_key(*relative_name(source_key))


def model_failure_key(model: str | None, rest: str) -> str:
    """``failed/<model>/<rest>.json`` for a key already split into model and rest, at most 1,024 bytes."""
    rest = rest.rstrip("/") or "_folder_marker"
    return _fit_key(f"{FAILED_PREFIX}{model or UNKNOWN_MODEL}/", rest, ".json")


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


def explain(name: str) -> dict[str, Any]:
    """Plain-words help for an error name: the documented row (if any) and what to do."""
    row = DOCUMENTED_ERRORS.get(name)
    advice = ADVICE.get(name)
    if advice is None and name.startswith(("Lambda.", "States.")):
        advice = "The step failed in AWS itself; replay the execution."
    return {"documented_error": dict(row) if row else None, "advice": advice or "See the message."}


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


def build_summary(
    *,
    source: SourceObject,
    job: Mapping[str, Any],
    poll: Mapping[str, Any],
    execution_id: str,
    result_key: str,
    result_size: int,
    result_filename: str,
    entries: list[str],
    archived_at: datetime,
) -> dict[str, Any]:
    """The content of ``results/<model>/<job>/summary.json`` right after archiving (``switched: false``)."""
    return {
        "model": job["model"],
        "retrain_job_id": job["retrain_job_id"],
        "model_id": poll.get("model_id"),
        "status": poll.get("status"),
        "message": poll.get("message"),
        "source": source.to_dict(),
        "execution_id": execution_id,
        "result": {"key": result_key, "filename": result_filename, "size": result_size, "entries": entries},
        "timings": {
            "event_time": source.event_time or None,
            "uploaded_at": job.get("uploaded_at"),
            "finished_at": poll.get("checked_at"),
            "archived_at": iso(archived_at),
        },
        "polls": int(poll.get("polls") or 0),
        "auto_switch": bool(job.get("auto_switch")),
        "switched": False,
        # SwitchModel replaces this when switching is on; when it is off, say so here.
        "switch": None if job.get("auto_switch") else {"switched": False, "reason": SWITCHING_OFF},
    }


def build_failure_record(
    *,
    error: StepError,
    step: str,
    execution_id: str,
    source: SourceObject | None,
    raw_key: str | None,
    job: Mapping[str, Any] | None,
    poll: Mapping[str, Any] | None,
    recorded_at: datetime,
) -> dict[str, Any]:
    """The content of ``failed/<model>/<rest>.json``."""
    model = (job or {}).get("model")
    if model is None and (source or raw_key):
        model = relative_name(source.key if source else str(raw_key))[0]
    return {
        "error": error.name,
        "message": error.message,
        **explain(error.name),
        "step": step,
        "execution_id": execution_id,
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


def write_json(s3: Any, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, ensure_ascii=False).encode(),
        ContentType="application/json",
    )


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
