"""API keys per model, from the stack's secret (cached by Powertools Parameters).

The secret is a JSON object ``{"<model>": "<api key>"}`` or
``{"<model>": {"api_key": "<api key>", "auto_switch": true}}``. No message here ever quotes a value.

A key is sent as the ``x-api-key`` header, so it must be printable ASCII without spaces: a key pasted with
a full-width character, a line break or a space inside fails here as ``ApiKeyMalformed`` (naming the model,
what is wrong and where), before any call could fail with a raw encoding error.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError

from retrain_pipeline.errors import ApiKeyMalformed, ModelNotConfigured, SecretMalformed
from retrain_pipeline.settings import PipelineSettings


@dataclass(frozen=True)
class ModelConfig:
    """One model's entry; the key is kept out of ``repr`` so it cannot leak through a log line."""

    model: str
    api_key: str = field(repr=False)
    auto_switch: bool


def _load(settings: PipelineSettings) -> dict[str, Any]:
    secret_id = settings.required("SECRET_ID")
    try:
        value = parameters.get_secret(
            secret_id,
            transform="json",
            max_age=settings.secret_max_age_seconds or None,
            force_fetch=settings.secret_max_age_seconds == 0,  # Powertools reads max_age=0 as "default"
        )
    except TransformParameterError:
        raise SecretMalformed(secret_id, "its value is not valid JSON") from None
    if not isinstance(value, dict):
        raise SecretMalformed(secret_id, f"its value is a JSON {type(value).__name__}, not an object")
    return value


def api_key_problem(api_key: str) -> str | None:
    """What makes ``api_key`` unusable as an HTTP header value, in words that never quote it."""
    for position, char in enumerate(api_key, start=1):
        if unicodedata.east_asian_width(char) in {"F", "W"}:
            return f"contains a full-width character at position {position}"
        if not char.isascii():
            return f"contains a non-ASCII character at position {position}"
        if char in "\r\n\t" or not char.isprintable():
            return f"contains a control character (line break, tab, ...) at position {position}"
        if char.isspace():
            return f"contains a space at position {position}"
    return None


def model_config(model: str, settings: PipelineSettings | None = None) -> ModelConfig:
    """The API key and switch preference of ``model``; ModelNotConfigured if the secret has no entry."""
    settings = settings or PipelineSettings.from_env()
    secret_id = settings.required("SECRET_ID")
    entry = _load(settings).get(model)
    if entry is None:
        raise ModelNotConfigured(model, secret_id)
    auto_switch = settings.auto_switch
    if isinstance(entry, dict):
        api_key = entry.get("api_key")
        if "auto_switch" in entry:
            if not isinstance(entry["auto_switch"], bool):
                raise SecretMalformed(secret_id, f"auto_switch of model {model!r} is not true or false")
            auto_switch = entry["auto_switch"]
    else:
        api_key = entry
    if not isinstance(api_key, str):
        raise SecretMalformed(secret_id, f"the entry of model {model!r} has no api_key string")
    if not api_key.strip():
        raise ModelNotConfigured(model, secret_id)
    api_key = api_key.strip()
    problem = api_key_problem(api_key)
    if problem:
        raise ApiKeyMalformed(model, secret_id, problem)
    return ModelConfig(model=model, api_key=api_key, auto_switch=auto_switch)


def api_key_for(model: str, settings: PipelineSettings | None = None) -> str:
    """The API key of ``model`` (never log it)."""
    return model_config(model, settings).api_key
