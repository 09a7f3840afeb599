"""What a training watch watches: the request read from ``training/<model>/<name>.json`` (an S3 "Object
Created" event) or given to the state machine directly as ``{"model", "external_process_id"}``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from retrain_pipeline.aws import aws_client
from retrain_pipeline.errors import BadTrainingRequest, FolderMarker, KeyOutsideModelFolder
from retrain_pipeline.keys import MAX_MODEL_CHARS, has_control_characters, is_model_name, model_and_rest
from retrain_pipeline.settings import TRAINING_PREFIX
from retrain_pipeline.source import SourceObject, check_prefix, parse_event, resolve_source

REQUEST_SUFFIX = ".json"
MAX_REQUEST_BYTES = 64 * 1024
MAX_PROCESS_ID_CHARS = 512
DIRECT_INPUT = "the execution input"
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class WatchRequest:
    """What to watch: the model (its API key), the training run, and the S3 object that asked (if any)."""

    model: str
    external_process_id: str
    source: SourceObject | None


def _json_type(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


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
    if has_control_characters(value):
        raise BadTrainingRequest(
            where, "external_process_id contains a line break or another control character"
        )
    return value


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
    model, name = model_and_rest(source.key, TRAINING_PREFIX)
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
    if not is_model_name(model):
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
