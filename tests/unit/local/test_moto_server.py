"""The local stack's moto server keeps what AWS guarantees and moto alone does not."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from p1_retrain.local.server import MotoServer

TABLE = "state"


@pytest.fixture
def server():
    server = MotoServer()
    server.start()
    server.reset()
    yield server
    server.reset()
    server.stop()


def test_two_conditional_writes_at_once_let_only_one_through(server, monkeypatch) -> None:
    """Two executions taking one switch gate at the same instant: DynamoDB lets exactly one conditional
    write through. moto alone checks both conditions before either writes (widened here to 0.3 s)."""
    import moto.dynamodb.models as models

    parser = models.create_condition_expression_parser

    def slow_parser(*args, **kwargs):
        answer = parser(*args, **kwargs)
        time.sleep(0.3)
        return answer

    monkeypatch.setattr(models, "create_condition_expression_parser", slow_parser)
    dynamodb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=server.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    outcomes: dict[str, str] = {}

    def take(holder: str) -> None:
        try:
            dynamodb.update_item(
                TableName=TABLE,
                Key={"id": {"S": "switch#demo"}},
                UpdateExpression="SET holder = :me",
                ConditionExpression="attribute_not_exists(holder)",
                ExpressionAttributeValues={":me": {"S": holder}},
            )
            outcomes[holder] = "taken"
        except ClientError as error:
            outcomes[holder] = error.response["Error"]["Code"]

    threads = [threading.Thread(target=take, args=(holder,)) for holder in ("older", "newer")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes.values()) == ["ConditionalCheckFailedException", "taken"], outcomes
    item = dynamodb.get_item(TableName=TABLE, Key={"id": {"S": "switch#demo"}}, ConsistentRead=True)["Item"]
    winner = next(holder for holder, outcome in outcomes.items() if outcome == "taken")
    assert item["holder"] == {"S": winner}
