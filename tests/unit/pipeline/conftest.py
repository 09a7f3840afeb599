"""Fixtures for the retrain_pipeline unit tests: settings objects and moto-backed AWS clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from prediction_one import ClientSettings
from retrain_pipeline.settings import PipelineSettings

REGION = "us-east-1"
BUCKET = "data-bucket"
TABLE = "state-table"


def make_settings(**overrides: Any) -> PipelineSettings:
    """Settings with small, explicit values; any field can be overridden."""
    values: dict[str, Any] = {
        "client": ClientSettings(base_url="http://127.0.0.1:9"),
        "data_bucket": BUCKET,
        "secret_id": "api-keys",
        "state_table": TABLE,
        "poll_interval_seconds": 30,
        "max_poll_interval_seconds": 300,
        "poll_backoff_ratio": 0.1,
        "job_deadline_hours": 24.0,
    }
    values.update(overrides)
    return PipelineSettings(**values)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture
def settings_factory() -> Any:
    """``settings_factory(**overrides)`` builds a PipelineSettings for a test."""
    return make_settings
