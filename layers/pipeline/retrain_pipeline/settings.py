"""The pipeline's settings, read from the functions' environment (docs/architecture.md, "Settings").

Every value the real service may disagree with (job statuses, deadlines, "nothing uploaded yet") is a
setting with a documented default, never a hidden constant.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from prediction_one import ClientSettings

DEFAULT_ALLOWED_EXTENSIONS = (".csv", ".tsv", ".zip")
INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"
FAILED_PREFIX = "failed/"
TRAINING_PREFIX = "training/"  # training watch requests: training/<model>/<name>.json


def _number(environ: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"Environment variable {name}={raw!r} is not a number") from None
    if value != value or value < minimum:  # NaN or out of range
        raise ValueError(f"Environment variable {name}={raw!r} must be a number >= {minimum:g}")
    return value


def _integer(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    value = _number(environ, name, default, minimum=minimum)
    if value != int(value):
        raise ValueError(f"Environment variable {name}={environ.get(name)!r} must be a whole number")
    return int(value)


def _boolean(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"true", "1", "yes", "on"}:
        return True
    if raw in {"false", "0", "no", "off"}:
        return False
    raise ValueError(f"Environment variable {name}={environ.get(name)!r} must be true or false")


def _extensions(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = environ.get(name, "").strip()
    if not raw:
        return DEFAULT_ALLOWED_EXTENSIONS
    items = [item.strip().lower() for item in raw.split(",") if item.strip()]
    if not items:
        raise ValueError(f"Environment variable {name}={raw!r} lists no extension")
    return tuple(item if item.startswith(".") else f".{item}" for item in items)


@dataclass(frozen=True)
class PipelineSettings:
    """Everything the handlers read from the environment."""

    client: ClientSettings
    data_bucket: str = ""
    secret_id: str = ""
    secret_max_age_seconds: int = 300
    state_table: str = ""
    idempotency_expiry_hours: float = 72.0
    poll_interval_seconds: int = 30
    max_poll_interval_seconds: int = 300
    poll_backoff_ratio: float = 0.1
    job_deadline_hours: float = 24.0
    auto_switch: bool = False
    allowed_extensions: tuple[str, ...] = DEFAULT_ALLOWED_EXTENSIONS
    switch_lease_seconds: int = 600
    upload_attempts: int = 3
    upload_pending_status: str = "job_created"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Read every variable of the settings table; a bad value raises ValueError naming the variable."""
        env = os.environ if environ is None else environ
        poll_floor = _integer(env, "POLL_INTERVAL_SECONDS", 30, minimum=1)
        poll_cap = _integer(env, "MAX_POLL_INTERVAL_SECONDS", 300, minimum=1)
        if poll_cap < poll_floor:
            raise ValueError(
                f"Environment variable MAX_POLL_INTERVAL_SECONDS={poll_cap} is below "
                f"POLL_INTERVAL_SECONDS={poll_floor}"
            )
        return cls(
            client=ClientSettings.from_env(env),
            data_bucket=env.get("DATA_BUCKET", "").strip(),
            secret_id=env.get("SECRET_ID", "").strip(),
            secret_max_age_seconds=_integer(env, "SECRET_MAX_AGE_SECONDS", 300),
            state_table=env.get("STATE_TABLE", "").strip(),
            idempotency_expiry_hours=_number(env, "IDEMPOTENCY_EXPIRY_HOURS", 72.0, minimum=0.001),
            poll_interval_seconds=poll_floor,
            max_poll_interval_seconds=poll_cap,
            poll_backoff_ratio=_number(env, "POLL_BACKOFF_RATIO", 0.1),
            job_deadline_hours=_number(env, "JOB_DEADLINE_HOURS", 24.0, minimum=0.0001),
            auto_switch=_boolean(env, "AUTO_SWITCH", False),
            allowed_extensions=_extensions(env, "ALLOWED_EXTENSIONS"),
            switch_lease_seconds=_integer(env, "SWITCH_LEASE_SECONDS", 600, minimum=1),
            upload_attempts=_integer(env, "UPLOAD_ATTEMPTS", 3, minimum=1),
            upload_pending_status=env.get("UPLOAD_PENDING_STATUS", "").strip().lower() or "job_created",
        )

    def required(self, name: str) -> str:
        """The value of a resource-name setting (``SECRET_ID``, ``STATE_TABLE``, ``DATA_BUCKET``)."""
        value = {
            "SECRET_ID": self.secret_id,
            "STATE_TABLE": self.state_table,
            "DATA_BUCKET": self.data_bucket,
        }[name]
        if not value:
            raise ValueError(f"Environment variable {name} is not set")
        return value
