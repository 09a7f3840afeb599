"""ClientSettings: defaults, environment parsing, clear errors naming the variable."""

from __future__ import annotations

import pytest
from prediction_one.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_FAILURE_STATUSES,
    DOCUMENTED_BASE_URLS,
    EASY_PREDICTIVE_ANALYTICS_BASE_URL,
    PREDICTION_ONE_BASE_URL,
    ClientSettings,
)


def test_defaults_match_the_contract():
    settings = ClientSettings()
    assert settings.base_url == PREDICTION_ONE_BASE_URL == DEFAULT_BASE_URL
    assert (settings.connect_timeout, settings.read_timeout, settings.max_retries) == (5.0, 30.0, 4)
    assert (settings.backoff_factor, settings.backoff_max, settings.upload_read_timeout) == (0.5, 20.0, 300.0)
    assert settings.failure_statuses == frozenset({"job_failed", "failed", "error", "canceled"})
    assert settings.failure_statuses == DEFAULT_FAILURE_STATUSES


def test_both_documented_hosts_are_constants():
    assert DOCUMENTED_BASE_URLS == (
        "https://developer-api.predictionone.sony.biz",
        "https://developer-api.easy-predictive-analytics.sony.com",
    )
    assert ClientSettings(base_url=EASY_PREDICTIVE_ANALYTICS_BASE_URL + "/").base_url == (
        EASY_PREDICTIVE_ANALYTICS_BASE_URL
    )


def test_from_env_reads_every_variable():
    settings = ClientSettings.from_env(
        {
            "API_BASE_URL": "http://127.0.0.1:8080/",
            "API_CONNECT_TIMEOUT": "1.5",
            "API_READ_TIMEOUT": "12",
            "API_MAX_RETRIES": "0",
            "FAILURE_STATUSES": " Job_Failed , ABORTED,,",
        }
    )
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.connect_timeout == 1.5
    assert settings.read_timeout == 12.0
    assert settings.max_retries == 0
    assert settings.failure_statuses == frozenset({"job_failed", "aborted"})


def test_from_env_blank_or_missing_keeps_defaults():
    assert ClientSettings.from_env({}) == ClientSettings()
    assert ClientSettings.from_env({"API_BASE_URL": "  ", "API_MAX_RETRIES": ""}) == ClientSettings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("API_BASE_URL", "developer-api.predictionone.sony.biz"),
        ("API_BASE_URL", "ftp://example.com"),
        ("API_BASE_URL", "https://example.com/?x=1"),
        ("API_BASE_URL", "https://user:pw@example.com"),
        ("API_BASE_URL", "https://example.com:99999"),
        ("API_CONNECT_TIMEOUT", "soon"),
        ("API_CONNECT_TIMEOUT", "0"),
        ("API_READ_TIMEOUT", "-3"),
        ("API_READ_TIMEOUT", "inf"),
        ("API_READ_TIMEOUT", "nan"),
        ("API_MAX_RETRIES", "two"),
        ("API_MAX_RETRIES", "-1"),
        ("API_MAX_RETRIES", "1.5"),
        ("FAILURE_STATUSES", ",,"),
        ("FAILURE_STATUSES", "job_failed,job_finished"),
    ],
)
def test_from_env_rejects_bad_values_naming_the_variable(variable, value):
    with pytest.raises(ValueError, match=variable):
        ClientSettings.from_env({variable: value})


def test_constructor_validates_too():
    with pytest.raises(ValueError, match="max_retries"):
        ClientSettings(max_retries=-1)
    with pytest.raises(ValueError, match="upload_read_timeout"):
        ClientSettings(upload_read_timeout=0)
    with pytest.raises(ValueError, match="failure_statuses"):
        ClientSettings(failure_statuses="failed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="success status"):
        ClientSettings(failure_statuses=frozenset({"finished"}))
    assert ClientSettings(failure_statuses=frozenset({" FAILED "})).failure_statuses == frozenset({"failed"})


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        ClientSettings().max_retries = 9  # type: ignore[misc]
