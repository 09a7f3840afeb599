"""Client settings: API host, timeouts, retries, and the statuses that mean a job failed."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PREDICTION_ONE_BASE_URL = "https://developer-api.predictionone.sony.biz"
"""The host named on most reference pages (Prediction One)."""

EASY_PREDICTIVE_ANALYTICS_BASE_URL = "https://developer-api.easy-predictive-analytics.sony.com"
"""The host named on the renamed product's page (Easy Predictive Analytics); same paths."""

DOCUMENTED_BASE_URLS = (PREDICTION_ONE_BASE_URL, EASY_PREDICTIVE_ANALYTICS_BASE_URL)
DEFAULT_BASE_URL = PREDICTION_ONE_BASE_URL

RETRAIN_FINISHED_STATUS = "job_finished"
TRAINING_FINISHED_STATUS = "finished"
DEFAULT_FAILURE_STATUSES = frozenset({"job_failed", "failed", "error", "canceled"})


def normalize_statuses(statuses: Iterable[str]) -> frozenset[str]:
    """Lower-case and strip status names, dropping empty ones."""
    return frozenset(s.strip().casefold() for s in statuses if s and s.strip())


def _check_base_url(value: str, name: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{name} must be an absolute http(s) URL such as {DEFAULT_BASE_URL!r}, got {value!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{name} must not carry credentials, a query or a fragment")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{name} has an invalid port: {value!r}") from exc
    return value.strip().rstrip("/")


def _check_seconds(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class ClientSettings:
    """How the client reaches the API. ``from_env`` reads the functions' environment."""

    base_url: str = DEFAULT_BASE_URL
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 4
    backoff_factor: float = 0.5
    backoff_max: float = 20.0
    upload_read_timeout: float = 300.0
    failure_statuses: frozenset[str] = field(default=DEFAULT_FAILURE_STATUSES)
    backoff_jitter: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _check_base_url(self.base_url, "base_url"))
        for name in ("connect_timeout", "read_timeout", "upload_read_timeout", "backoff_max"):
            object.__setattr__(self, name, _check_seconds(getattr(self, name), name))
        for name in ("backoff_factor", "backoff_jitter"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        if isinstance(self.failure_statuses, str):
            raise ValueError("failure_statuses must be a collection of status names, not one string")
        statuses = normalize_statuses(self.failure_statuses)
        if not statuses:
            raise ValueError("failure_statuses must name at least one status")
        clash = statuses & {RETRAIN_FINISHED_STATUS, TRAINING_FINISHED_STATUS}
        if clash:
            raise ValueError(f"failure_statuses must not contain a success status: {sorted(clash)}")
        object.__setattr__(self, "failure_statuses", statuses)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ClientSettings:
        """Read ``API_BASE_URL``, ``API_CONNECT_TIMEOUT``, ``API_READ_TIMEOUT``, ``API_MAX_RETRIES`` and
        ``FAILURE_STATUSES`` (comma list). Unset or blank variables keep their defaults."""
        values: dict[str, object] = {}

        def text(name: str) -> str | None:
            raw = environ.get(name)
            return raw.strip() if raw is not None and raw.strip() else None

        if (raw := text("API_BASE_URL")) is not None:
            values["base_url"] = _check_base_url(raw, "API_BASE_URL")
        for var, attr in (("API_CONNECT_TIMEOUT", "connect_timeout"), ("API_READ_TIMEOUT", "read_timeout")):
            if (raw := text(var)) is not None:
                try:
                    seconds = float(raw)
                except ValueError:
                    raise ValueError(f"{var} must be a number of seconds, got {raw!r}") from None
                values[attr] = _check_seconds(seconds, var)
        if (raw := text("API_MAX_RETRIES")) is not None:
            try:
                retries = int(raw)
            except ValueError:
                raise ValueError(f"API_MAX_RETRIES must be an integer >= 0, got {raw!r}") from None
            if retries < 0:
                raise ValueError(f"API_MAX_RETRIES must be an integer >= 0, got {raw!r}")
            values["max_retries"] = retries
        if (raw := text("FAILURE_STATUSES")) is not None:
            statuses = normalize_statuses(raw.split(","))
            if not statuses:
                raise ValueError(f"FAILURE_STATUSES must name at least one status, got {raw!r}")
            clash = statuses & {RETRAIN_FINISHED_STATUS, TRAINING_FINISHED_STATUS}
            if clash:
                raise ValueError(f"FAILURE_STATUSES must not contain a success status: {sorted(clash)}")
            values["failure_statuses"] = statuses
        return cls(**values)  # type: ignore[arg-type]
