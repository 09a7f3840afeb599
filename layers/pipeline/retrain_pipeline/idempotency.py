"""One source object version → one piece of work: Powertools Idempotency on the state table.

The retrain upload (one retrain job per object version) and the training watch (one watcher per request
object version) both use it; each passes its own key prefix, so their records never collide.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from retrain_pipeline.aws import aws_client
from retrain_pipeline.settings import PipelineSettings


@functools.cache
def persistence(table: str) -> DynamoDBPersistenceLayer:
    """The idempotency store: ``id`` key, ``expiration`` TTL (the template's StateTable)."""
    return DynamoDBPersistenceLayer(
        table_name=table, key_attr="id", expiry_attr="expiration", boto3_client=aws_client("dynamodb")
    )


def once_per_request(
    function: Callable[..., dict[str, Any]],
    *,
    key_prefix: str,
    settings: PipelineSettings,
    lambda_context: Any | None,
) -> Callable[..., dict[str, Any]]:
    """``function`` made idempotent on its ``request`` keyword argument for IDEMPOTENCY_EXPIRY_HOURS."""
    config = IdempotencyConfig(expires_after_seconds=max(1, int(settings.idempotency_expiry_hours * 3600)))
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)
    return idempotent_function(
        function,
        data_keyword_argument="request",
        persistence_store=persistence(settings.required("STATE_TABLE")),
        config=config,
        key_prefix=key_prefix,
    )


def is_duplicate(stored: Mapping[str, Any], execution_id: str) -> bool:
    """Another execution made the ``stored`` result: this one repeats it."""
    return stored["execution_id"] != execution_id


def claimed_output(stored: Mapping[str, Any], execution_id: str, **fields: Any) -> dict[str, Any]:
    """A workflow's first step's output: ``fields``, then ``duplicate`` and ``execution_id``, and for a
    duplicate ``created_by_execution``, the execution that made the ``stored`` result."""
    duplicate = is_duplicate(stored, execution_id)
    output = {**fields, "duplicate": duplicate, "execution_id": execution_id}
    if duplicate:
        output["created_by_execution"] = stored["execution_id"]
    return output
