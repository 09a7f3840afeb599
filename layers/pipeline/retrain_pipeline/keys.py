"""The bucket's key layout (docs/architecture.md, "S3 layout"): the model a key names under any prefix,
and the keys of results, summaries and failure records of both workflows."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from retrain_pipeline.settings import FAILED_PREFIX, INCOMING_PREFIX, RESULTS_PREFIX, TRAINING_PREFIX

S3_MAX_KEY_BYTES = 1024
UNKNOWN_MODEL = "_unknown"
SUMMARY_NAME = "summary.json"
TRAINING_FOLDER = "training"  # results/<model>/training/<id>/ and failed/<model>/training/<id>.json
MAX_MODEL_CHARS = 256


def model_and_rest(key: str, prefix: str = INCOMING_PREFIX) -> tuple[str | None, str]:
    """``(model, rest after <prefix><model>/)``; ``(None, key without the prefix)`` outside a model folder
    (``(None, key)`` outside the prefix)."""
    if not key.startswith(prefix):
        return None, key
    rest = key[len(prefix) :]
    model, slash, name = rest.partition("/")
    if not slash or not model.strip():
        return None, rest
    return model, name


def has_control_characters(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def is_model_name(value: object) -> bool:
    """Whether ``value`` can be a model folder: a non-empty string without ``/``, surrounding spaces or
    control characters, not ``.``/``..``, at most MAX_MODEL_CHARS characters."""
    return (
        isinstance(value, str)
        and bool(value.strip())
        and value == value.strip()
        and len(value) <= MAX_MODEL_CHARS
        and "/" not in value
        and value not in {".", ".."}
        and not has_control_characters(value)
    )


def execution_name(execution_id: str) -> str:
    """The execution's name, the last part of its ARN."""
    return execution_id.rsplit(":", 1)[-1] or "execution"


# Retrain results: results/<model>/<retrain_job_id>/


def result_prefix(model: str, retrain_job_id: str) -> str:
    return f"{RESULTS_PREFIX}{model}/{retrain_job_id}/"


def summary_key(model: str, retrain_job_id: str) -> str:
    return result_prefix(model, retrain_job_id) + SUMMARY_NAME


def result_key(model: str, retrain_job_id: str, filename: str) -> str:
    return result_prefix(model, retrain_job_id) + filename


# Training results: results/<model>/training/<external_process_id>/


def key_segment(external_process_id: str) -> str:
    """The process id as one S3 key segment: unchanged for ordinary ids, never ``/``, ``.`` or ``..``."""
    segment = quote(external_process_id, safe="-_.~")
    return segment.replace(".", "%2E") if segment in {".", ".."} else segment


def training_result_prefix(model: str, external_process_id: str) -> str:
    return f"{RESULTS_PREFIX}{model}/{TRAINING_FOLDER}/{key_segment(external_process_id)}/"


def training_result_key(model: str, external_process_id: str, filename: str) -> str:
    return training_result_prefix(model, external_process_id) + filename


def training_summary_key(model: str, external_process_id: str) -> str:
    return training_result_prefix(model, external_process_id) + SUMMARY_NAME


# Failure records: failed/<model>/<rest>.json


def _fit_key(prefix: str, rest: str, suffix: str) -> str:
    key = f"{prefix}{rest}{suffix}"
    if len(key.encode()) <= S3_MAX_KEY_BYTES:
        return key
    digest = hashlib.sha256(rest.encode()).hexdigest()[:16]
    budget = S3_MAX_KEY_BYTES - len(f"{prefix}-{digest}{suffix}".encode())
    head = rest.encode()[:budget].decode("utf-8", "ignore")
    return f"{prefix}{head}-{digest}{suffix}"


def model_failure_key(model: str | None, rest: str) -> str:
    """``failed/<model>/<rest>.json`` for a key already split into model and rest, at most 1,024 bytes."""
    rest = rest.rstrip("/") or "_folder_marker"
    return _fit_key(f"{FAILED_PREFIX}{model or UNKNOWN_MODEL}/", rest, ".json")


def failure_key(source_key: str) -> str:
    """``failed/<model>/<rest>.json`` (``failed/_unknown/...`` without a model), at most 1,024 bytes."""
    return model_failure_key(*model_and_rest(source_key, INCOMING_PREFIX))


def retrain_failure_key(raw_key: str | None, execution_id: str) -> str:
    """The retrain record's key: from the source key, else ``failed/_unknown/<execution name>.json``."""
    if raw_key:
        return failure_key(raw_key)
    return f"{FAILED_PREFIX}{UNKNOWN_MODEL}/{execution_name(execution_id)}.json"


def training_failure_key(
    raw_key: str | None, model: str | None, process_id: str | None, execution_id: str
) -> str:
    """``failed/<model>/<rest of key>.json`` for a request object, ``failed/<model>/training/<id>.json``
    for a direct start (``_unknown`` without a model; the execution name without a process id)."""
    if raw_key:
        return model_failure_key(*model_and_rest(raw_key, TRAINING_PREFIX))
    name = key_segment(process_id) if process_id else execution_name(execution_id)
    return model_failure_key(model, f"{TRAINING_FOLDER}/{name}")
