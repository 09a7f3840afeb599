"""API keys per model from Secrets Manager via Powertools Parameters (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from retrain_pipeline.errors import ModelNotConfigured, SecretMalformed
from retrain_pipeline.secrets import api_key_for, model_config

SECRET = "api-keys"


@pytest.fixture
def secret(aws: None) -> Iterator[Any]:
    parameters.clear_caches()
    client = boto3.client("secretsmanager")

    def put(value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            client.create_secret(Name=SECRET, SecretString=text)
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=SECRET, SecretString=text)
        parameters.clear_caches()

    yield put
    parameters.clear_caches()


def test_plain_and_object_entries(secret: Any, settings_factory: Any) -> None:
    secret(
        {
            "demo": "demo-key",
            "churn": {"api_key": "churn-key", "auto_switch": True},
            "sales": {"api_key": "s"},
        }
    )
    settings = settings_factory(auto_switch=False)
    assert api_key_for("demo", settings) == "demo-key"
    churn = model_config("churn", settings)
    assert (churn.api_key, churn.auto_switch) == ("churn-key", True)
    assert model_config("sales", settings_factory(auto_switch=True)).auto_switch is True
    assert "churn-key" not in repr(churn)


def test_values_are_cached_for_max_age(secret: Any, settings_factory: Any) -> None:
    secret({"demo": "old-key"})
    settings = settings_factory(secret_max_age_seconds=300)
    assert api_key_for("demo", settings) == "old-key"
    boto3.client("secretsmanager").put_secret_value(
        SecretId=SECRET, SecretString=json.dumps({"demo": "new-key"})
    )
    assert api_key_for("demo", settings) == "old-key"
    assert api_key_for("demo", settings_factory(secret_max_age_seconds=0)) == "new-key"


def test_missing_model_names_model_and_secret_not_values(secret: Any, settings_factory: Any) -> None:
    secret({"demo": "demo-key"})
    with pytest.raises(ModelNotConfigured) as missing:
        api_key_for("churn", settings_factory())
    assert "'churn'" in str(missing.value) and SECRET in str(missing.value)
    assert "demo-key" not in str(missing.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("SECRETVALUE not json {", "not valid JSON"),
        (["SECRETVALUE"], "JSON list, not an object"),
        ({"demo": 42}, "no api_key string"),
        ({"demo": {"key": "SECRETVALUE"}}, "no api_key string"),
        ({"demo": {"api_key": "SECRETVALUE", "auto_switch": "yes"}}, "auto_switch of model 'demo'"),
    ],
)
def test_malformed_secret(secret: Any, settings_factory: Any, value: Any, problem: str) -> None:
    secret(value)
    with pytest.raises(SecretMalformed, match=problem) as malformed:
        api_key_for("demo", settings_factory())
    assert SECRET in str(malformed.value)
    assert "SECRETVALUE" not in str(malformed.value)


def test_blank_key_is_not_configured(secret: Any, settings_factory: Any) -> None:
    secret({"demo": "  "})
    with pytest.raises(ModelNotConfigured):
        api_key_for("demo", settings_factory())
