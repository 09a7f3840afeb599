"""PipelineSettings.from_env: defaults, every variable, clear errors."""

from __future__ import annotations

import pytest
from retrain_pipeline.settings import PipelineSettings


def test_defaults_follow_the_architecture_table() -> None:
    settings = PipelineSettings.from_env({})
    assert settings.poll_interval_seconds == 30
    assert settings.max_poll_interval_seconds == 300
    assert settings.poll_backoff_ratio == 0.1
    assert settings.job_deadline_hours == 24
    assert settings.auto_switch is False
    assert settings.allowed_extensions == (".csv", ".tsv", ".zip")
    assert settings.secret_max_age_seconds == 300
    assert settings.idempotency_expiry_hours == 72
    assert settings.upload_pending_status == "job_created"
    assert settings.client.base_url == "https://developer-api.predictionone.sony.biz"
    assert settings.client.failure_statuses == {"job_failed", "failed", "error", "canceled"}


def test_every_variable_is_read() -> None:
    settings = PipelineSettings.from_env(
        {
            "API_BASE_URL": "https://developer-api.easy-predictive-analytics.sony.com/",
            "API_CONNECT_TIMEOUT": "2",
            "API_READ_TIMEOUT": "9",
            "API_MAX_RETRIES": "1",
            "FAILURE_STATUSES": "Broken, gone",
            "POLL_INTERVAL_SECONDS": "10",
            "MAX_POLL_INTERVAL_SECONDS": "60",
            "POLL_BACKOFF_RATIO": "0.25",
            "JOB_DEADLINE_HOURS": "2.5",
            "AUTO_SWITCH": "TRUE",
            "ALLOWED_EXTENSIONS": "CSV, .Zip",
            "DATA_BUCKET": "bucket",
            "SECRET_ID": "secret",
            "SECRET_MAX_AGE_SECONDS": "60",
            "STATE_TABLE": "table",
            "IDEMPOTENCY_EXPIRY_HOURS": "1",
            "SWITCH_LEASE_SECONDS": "90",
            "UPLOAD_ATTEMPTS": "5",
            "UPLOAD_PENDING_STATUS": "Job_Created",
        }
    )
    assert settings.client.base_url == "https://developer-api.easy-predictive-analytics.sony.com"
    assert (settings.client.connect_timeout, settings.client.read_timeout) == (2.0, 9.0)
    assert settings.client.max_retries == 1
    assert settings.client.failure_statuses == {"broken", "gone"}
    assert (settings.poll_interval_seconds, settings.max_poll_interval_seconds) == (10, 60)
    assert settings.poll_backoff_ratio == 0.25
    assert settings.job_deadline_hours == 2.5
    assert settings.auto_switch is True
    assert settings.allowed_extensions == (".csv", ".zip")
    assert (settings.data_bucket, settings.secret_id, settings.state_table) == ("bucket", "secret", "table")
    assert settings.secret_max_age_seconds == 60
    assert settings.idempotency_expiry_hours == 1
    assert settings.switch_lease_seconds == 90
    assert settings.upload_attempts == 5
    assert settings.upload_pending_status == "job_created"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLL_INTERVAL_SECONDS", "soon"),
        ("POLL_INTERVAL_SECONDS", "0"),
        ("POLL_INTERVAL_SECONDS", "1.5"),
        ("MAX_POLL_INTERVAL_SECONDS", "nan"),
        ("POLL_BACKOFF_RATIO", "-1"),
        ("JOB_DEADLINE_HOURS", "0"),
        ("AUTO_SWITCH", "maybe"),
        ("ALLOWED_EXTENSIONS", " , "),
        ("SECRET_MAX_AGE_SECONDS", "-5"),
        ("IDEMPOTENCY_EXPIRY_HOURS", "x"),
        ("UPLOAD_ATTEMPTS", "0"),
        ("API_READ_TIMEOUT", "fast"),
        ("API_BASE_URL", "ftp://example.com"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        PipelineSettings.from_env({name: value})


def test_cap_below_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="MAX_POLL_INTERVAL_SECONDS"):
        PipelineSettings.from_env({"POLL_INTERVAL_SECONDS": "60", "MAX_POLL_INTERVAL_SECONDS": "30"})


def test_required_resource_names() -> None:
    settings = PipelineSettings.from_env({"SECRET_ID": "s"})
    assert settings.required("SECRET_ID") == "s"
    with pytest.raises(ValueError, match="STATE_TABLE is not set"):
        settings.required("STATE_TABLE")
