"""What every step shares: its output and metrics, the step names, the clock and the Prediction One client.

A step is one Lambda task of a state machine. It returns a ``StepOutput``: ``output`` is what the state
machine stores (ids and keys only, shapes in docs/architecture.md), ``metrics`` what the handler publishes,
``log`` / ``log_extra`` the one line the handler logs once the step is done, and ``correlation_id`` the id
the handler's log lines carry from then on (when the input did not name it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from prediction_one import PredictionOneClient

from retrain_pipeline.secrets import ModelConfig
from retrain_pipeline.settings import PipelineSettings
from retrain_pipeline.source import SourceObject

# The Task states of statemachine/retrain.asl.json ...
UPLOAD = "Upload"
CHECK_STATUS = "CheckStatus"
ARCHIVE = "Archive"
SWITCH_MODEL = "SwitchModel"
RECORD_FAILURE = "RecordFailure"
# ... and of statemachine/train_watch.asl.json (RecordFailure is shared).
START_WATCH = "StartWatch"
CHECK_TRAINING = "CheckTraining"
ARCHIVE_TRAINING = "ArchiveTraining"
TRAINING_STEPS = frozenset({START_WATCH, CHECK_TRAINING, ARCHIVE_TRAINING})

Metric = tuple[str, MetricUnit, float]


@dataclass(frozen=True)
class StepOutput:
    output: dict[str, Any]
    metrics: list[Metric] = field(default_factory=list)
    log: str = ""
    log_extra: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None


def now() -> datetime:
    """The steps' clock (UTC)."""
    return datetime.now(UTC)


def api_client(config: ModelConfig, settings: PipelineSettings) -> PredictionOneClient:
    """A Prediction One client with the model's API key."""
    return PredictionOneClient(config.api_key, settings.client)


def output_bucket(settings: PipelineSettings, source: SourceObject | None) -> str:
    """Where results and records go: ``DATA_BUCKET``, else the source object's bucket."""
    if settings.data_bucket:
        return settings.data_bucket
    if source is not None:
        return source.bucket
    return settings.required("DATA_BUCKET")


def poll_log(poll: Mapping[str, Any]) -> dict[str, Any]:
    """What a status check logs: the status, the state, the number of polls and the next wait."""
    return {
        "status": poll["status"],
        "state": poll["state"],
        "polls": poll["polls"],
        "wait": poll["wait_seconds"],
    }
