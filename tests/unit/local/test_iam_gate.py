"""The IAM gate: AWS's policy evaluation, real resource ARNs in moto's request authorization, AWS's
AccessDenied answers, the same decision for calls made on a role's behalf, and the template's own roles."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from p1_retrain.local import iam_gate
from p1_retrain.local import template as tpl
from p1_retrain.local.iam_gate import template_policies as tp
from p1_retrain.local.iam_gate.evaluator import (
    Effect,
    PolicyDocument,
    UnsupportedCondition,
    action_matches,
    evaluate,
    resource_matches,
)

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"
ARN = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
TABLE_T = ARN.format("dynamodb", "table/T")
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:user/admin"]},
            "Action": "sts:AssumeRole",
        }
    ],
}
NO_RETRY = Config(retries={"max_attempts": 1, "mode": "standard"})


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def denied(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


# -- the evaluator on its own ---------------------------------------------------------------------------


def decide(
    statements: list[dict[str, Any]], action: str, resource: str, context: dict | None = None
) -> Effect:
    return evaluate([PolicyDocument("p", policy(*statements))], action, resource, context).effect


def test_explicit_deny_wins_over_any_allow() -> None:
    statements = [
        allow("dynamodb:*", "*"),
        {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": TABLE_T},
    ]
    assert decide(statements, "dynamodb:PutItem", TABLE_T) is Effect.EXPLICIT_DENY
    assert decide(statements, "dynamodb:GetItem", TABLE_T) is Effect.ALLOW
    assert decide(statements, "dynamodb:PutItem", TABLE_T + "2") is Effect.ALLOW
    assert decide([], "dynamodb:GetItem", TABLE_T) is Effect.IMPLICIT_DENY


def test_not_action_and_not_resource() -> None:
    statements = [
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": "arn:aws:s3:::b/secret/*"}
    ]
    assert decide(statements, "s3:GetObject", "arn:aws:s3:::b/open/x") is Effect.ALLOW
    assert decide(statements, "s3:GetObject", "arn:aws:s3:::b/secret/x") is Effect.IMPLICIT_DENY
    assert decide(statements, "s3:DeleteObject", "arn:aws:s3:::b/open/x") is Effect.IMPLICIT_DENY


def test_wildcards_follow_iam_not_regex() -> None:
    assert action_matches("dynamodb:Get*", "dynamodb:GetItem")
    assert action_matches("DynamoDB:getitem", "dynamodb:GetItem")  # actions are case-insensitive
    assert not action_matches("dynamodb:Get*", "dynamodb:PutItem")
    assert resource_matches("arn:aws:sns:*:123456789012:t?", "arn:aws:sns:eu-west-1:123456789012:t1")
    assert not resource_matches("arn:aws:sns:*:123456789012:t?", "arn:aws:sns:eu-west-1:123456789012:t10")
    assert not resource_matches("arn:aws:s3:::b.c/*", "arn:aws:s3:::bxc/k")  # "." is literal
    assert not resource_matches(
        "arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/k"
    )  # resources are case-sensitive
    # a wildcard stays inside its ARN part: "*" in the region part cannot swallow the account
    assert not resource_matches("arn:aws:sns:us-*:t1", "arn:aws:sns:us-east-1:123456789012:t1")
    assert resource_matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/a:b/c")  # the resource part keeps its colons


def test_conditions_the_template_uses() -> None:
    listing = allow(
        "s3:ListBucket", "arn:aws:s3:::b", Condition={"StringLike": {"s3:prefix": "results/*/training/*"}}
    )
    assert (
        decide([listing], "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "results/m/training/1/x"})
        is Effect.ALLOW
    )
    assert (
        decide([listing], "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "results/m/1/"})
        is Effect.IMPLICIT_DENY
    )
    assert decide([listing], "s3:ListBucket", "arn:aws:s3:::b") is Effect.IMPLICIT_DENY  # no prefix given

    insecure = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    everything = allow("s3:*", "*")
    assert decide(
        [everything, insecure], "s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": "false"}
    ) is (Effect.EXPLICIT_DENY)
    assert decide(
        [everything, insecure], "s3:GetObject", "arn:aws:s3:::b/k", {"aws:SecureTransport": True}
    ) is (Effect.ALLOW)

    rule = ARN.format("events", "rule/r1")
    from_rule = allow("sqs:SendMessage", "*", Condition={"ArnEquals": {"aws:SourceArn": [rule]}})
    assert decide([from_rule], "sqs:SendMessage", "q", {"aws:SourceArn": rule}) is Effect.ALLOW
    assert decide([from_rule], "sqs:SendMessage", "q", {"aws:SourceArn": rule + "x"}) is Effect.IMPLICIT_DENY

    via_sns = allow(
        "kms:Decrypt", "*", Condition={"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}}
    )
    assert (
        decide([via_sns], "kms:Decrypt", "k", {"kms:viaservice": "sns.us-east-1.amazonaws.com"})
        is Effect.ALLOW
    )
    assert (
        decide([via_sns], "kms:Decrypt", "k", {"kms:ViaService": "s3.us-east-1.amazonaws.com"})
        is Effect.IMPLICIT_DENY
    )
    assert decide([via_sns], "kms:Decrypt", "k") is Effect.IMPLICIT_DENY


def test_condition_edge_cases() -> None:
    if_exists = allow(
        "s3:GetObject", "*", Condition={"StringEqualsIfExists": {"s3:ExistingObjectTag/x": "y"}}
    )
    assert decide([if_exists], "s3:GetObject", "o") is Effect.ALLOW
    negated = allow("s3:GetObject", "*", Condition={"StringNotEquals": {"aws:PrincipalTag/team": "red"}})
    assert (
        decide([negated], "s3:GetObject", "o") is Effect.ALLOW
    )  # a negated operator holds for a missing key
    assert decide([negated], "s3:GetObject", "o", {"aws:PrincipalTag/team": "red"}) is Effect.IMPLICIT_DENY
    any_value = allow("s3:GetObject", "*", Condition={"ForAnyValue:StringLike": {"aws:TagKeys": ["env*"]}})
    assert decide([any_value], "s3:GetObject", "o", {"aws:TagKeys": ["owner", "environment"]}) is Effect.ALLOW
    assert decide([any_value], "s3:GetObject", "o", {"aws:TagKeys": ["owner"]}) is Effect.IMPLICIT_DENY
    absent = allow("s3:GetObject", "*", Condition={"Null": {"aws:TokenIssueTime": "true"}})
    assert decide([absent], "s3:GetObject", "o") is Effect.ALLOW
    assert decide([absent], "s3:GetObject", "o", {"aws:TokenIssueTime": "now"}) is Effect.IMPLICIT_DENY
    after = allow(
        "s3:GetObject", "*", Condition={"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    )
    holder = iam_gate.Principal(
        "arn:aws:iam::123456789012:user/u", ACCOUNT, (PolicyDocument("p", policy(after)),)
    )
    assert iam_gate.decide(
        holder, "s3:GetObject", "o"
    ).allowed  # aws:CurrentTime is in every request's context
    assert (
        decide([after], "s3:GetObject", "o", {"aws:CurrentTime": "2019-12-31T23:59:59Z"})
        is Effect.IMPLICIT_DENY
    )
    with pytest.raises(UnsupportedCondition, match="BinaryEquals"):
        decide([allow("s3:GetObject", "*", Condition={"BinaryEquals": {"k": "QQ=="}})], "s3:GetObject", "o")


def test_resource_arns_of_the_services_moto_authorizes_against_star() -> None:
    checks = iam_gate.checks_for
    scope = {"region": REGION, "account": ACCOUNT}
    assert checks("dynamodb", "Query", {"TableName": "T", "IndexName": "by-date"}, **scope) == [
        iam_gate.Check("dynamodb:Query", TABLE_T + "/index/by-date")
    ]
    transaction = {"TransactItems": [{"Put": {"TableName": "T"}}, {"ConditionCheck": {"TableName": "U"}}]}
    assert checks("dynamodb", "TransactWriteItems", transaction, **scope) == [
        iam_gate.Check("dynamodb:PutItem", TABLE_T),
        iam_gate.Check("dynamodb:ConditionCheckItem", ARN.format("dynamodb", "table/U")),
    ]
    assert checks(
        "states", "StartExecution", {"stateMachineArn": ARN.format("states", "stateMachine:m")}, **scope
    ) == [iam_gate.Check("states:StartExecution", ARN.format("states", "stateMachine:m"))]
    assert checks("sns", "Unsubscribe", {"SubscriptionArn": ARN.format("sns", "t1:0f1e")}, **scope) == [
        iam_gate.Check("sns:Unsubscribe", ARN.format("sns", "t1"))
    ]
    assert checks("lambda", "Invoke", {}, path="/2015-03-31/functions/f1/invocations", **scope) == [
        iam_gate.Check("lambda:InvokeFunction", ARN.format("lambda", "function:f1"))
    ]
    assert checks("dynamodb", "ListTables", {}, **scope) is None  # nothing to resolve: moto's "*" stays


# -- moto's request authorization with the gate installed -----------------------------------------------


class Account:
    """A moto account with an administrator; ``session_for(policy)`` is a role session holding ``policy``."""

    def __init__(self) -> None:
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin", PolicyName="all", PolicyDocument=json.dumps(policy(allow("*", "*")))
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.admin = boto3.session.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=REGION,
        )
        self._roles = 0
        self.endpoint_url: str | None = None

    def client(self, session: boto3.session.Session, service: str) -> Any:
        return session.client(service, endpoint_url=self.endpoint_url, config=NO_RETRY)

    def role(self, document: dict[str, Any]) -> str:
        self._roles += 1
        iam = self.client(self.admin, "iam")
        name = f"role-{self._roles}"
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=json.dumps(document))
        return arn

    def session_for(
        self, document: dict[str, Any], session_policy: dict | None = None
    ) -> boto3.session.Session:
        extra = {"Policy": json.dumps(session_policy)} if session_policy else {}
        answer = self.client(self.admin, "sts").assume_role(
            RoleArn=self.role(document), RoleSessionName="worker", **extra
        )
        credentials = answer["Credentials"]
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        created = Account()
        with iam_gate.install(enforce=True):
            yield created


def make_tables(account: Account, *names: str) -> None:
    dynamodb = account.client(account.admin, "dynamodb")
    for name in names:
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def message(principal: str, action: str, resource: str) -> str:
    return (
        f"User: {principal} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )


WORKER = "arn:aws:sts::123456789012:assumed-role/role-1/worker"


def test_dynamodb_is_authorized_against_the_table(account: Account) -> None:
    make_tables(account, "T", "U")
    session = account.session_for(policy(allow(["dynamodb:PutItem", "dynamodb:GetItem"], TABLE_T)))
    dynamodb = account.client(session, "dynamodb")
    dynamodb.put_item(TableName="T", Item={"id": {"S": "a"}})
    assert dynamodb.get_item(TableName="T", Key={"id": {"S": "a"}})["Item"]["id"] == {"S": "a"}

    error = denied(lambda: dynamodb.put_item(TableName="U", Item={"id": {"S": "a"}}))
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["Error"]["Message"] == message(
        WORKER, "dynamodb:PutItem", ARN.format("dynamodb", "table/U")
    )
    # A transaction needs each item's own action on its table.
    error = denied(
        lambda: dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "T", "Item": {"id": {"S": "b"}}}},
                {"Put": {"TableName": "U", "Item": {"id": {"S": "b"}}}},
            ]
        )
    )
    assert "dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/U" in str(error)


def test_secrets_are_authorized_against_their_arn_with_moto_suffix(account: Account) -> None:
    secrets = account.client(account.admin, "secretsmanager")
    first = secrets.create_secret(Name="app/first", SecretString="{}")["ARN"]
    second = secrets.create_secret(Name="app/second", SecretString="{}")["ARN"]
    session = account.session_for(policy(allow("secretsmanager:GetSecretValue", first)))
    client = account.client(session, "secretsmanager")
    assert client.get_secret_value(SecretId="app/first")["ARN"] == first  # by name, allowed by full ARN
    error = denied(lambda: client.get_secret_value(SecretId="app/second"))
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["Error"]["Message"] == message(WORKER, "secretsmanager:GetSecretValue", second)


def test_not_resource_is_enforced(account: Account) -> None:
    secrets = account.client(account.admin, "secretsmanager")
    secrets.create_secret(Name="open", SecretString="{}")
    locked = secrets.create_secret(Name="locked", SecretString="{}")["ARN"]
    statement = {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "NotResource": ARN.format("secretsmanager", "secret:locked-*"),
    }
    client = account.client(account.session_for(policy(statement)), "secretsmanager")
    client.get_secret_value(SecretId="open")
    assert locked in str(denied(lambda: client.get_secret_value(SecretId="locked")))


def test_explicit_deny_and_wildcards_on_requests(account: Account) -> None:
    make_tables(account, "T", "T2", "U")
    session = account.session_for(
        policy(
            allow("dynamodb:*Item", ARN.format("dynamodb", "table/T*")),
            {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": "*"},
        )
    )
    dynamodb = account.client(session, "dynamodb")
    for table in ("T", "T2"):
        dynamodb.put_item(TableName=table, Item={"id": {"S": "a"}})
    assert "table/U because no identity-based policy" in str(
        denied(lambda: dynamodb.put_item(TableName="U", Item={"id": {"S": "a"}}))
    )
    error = denied(lambda: dynamodb.delete_item(TableName="T", Key={"id": {"S": "a"}}))
    assert error.response["Error"]["Message"] == (
        f"User: {WORKER} is not authorized to perform: dynamodb:DeleteItem on resource: {TABLE_T} "
        "with an explicit deny in an identity-based policy"
    )


def test_sns_answers_authorization_error(account: Account) -> None:
    sns = account.client(account.admin, "sns")
    allowed = sns.create_topic(Name="allowed")["TopicArn"]
    other = sns.create_topic(Name="other")["TopicArn"]
    client = account.client(account.session_for(policy(allow("sns:Publish", allowed))), "sns")
    client.publish(TopicArn=allowed, Message="hello")
    error = denied(lambda: client.publish(TopicArn=other, Message="hello"))
    assert error.response["Error"]["Code"] == "AuthorizationError"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error.response["Error"]["Message"] == message(WORKER, "sns:Publish", other)


def test_step_functions_and_kms(account: Account) -> None:
    sfn = account.client(account.admin, "stepfunctions")
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    role = f"arn:aws:iam::{ACCOUNT}:role/machine"
    machines = [
        sfn.create_state_machine(name=n, definition=definition, roleArn=role)["stateMachineArn"]
        for n in ("m1", "m2")
    ]
    kms = account.client(account.admin, "kms")
    keys = [kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2)]
    kms.create_alias(AliasName="alias/mine", TargetKeyId=keys[0])
    kms.create_alias(AliasName="alias/theirs", TargetKeyId=keys[1])
    session = account.session_for(
        policy(allow("states:StartExecution", machines[0]), allow("kms:GenerateDataKey", keys[0]))
    )
    account.client(session, "stepfunctions").start_execution(stateMachineArn=machines[0], input="{}")
    error = denied(
        lambda: account.client(session, "stepfunctions").start_execution(stateMachineArn=machines[1])
    )
    assert error.response["Error"]["Code"] == "AccessDeniedException"
    assert error.response["Error"]["Message"] == message(WORKER, "states:StartExecution", machines[1])
    client = account.client(session, "kms")
    client.generate_data_key(KeyId="alias/mine", KeySpec="AES_256")  # the alias stands for its key
    error = denied(lambda: client.generate_data_key(KeyId="alias/theirs", KeySpec="AES_256"))
    assert error.response["Error"]["Message"] == message(WORKER, "kms:GenerateDataKey", keys[1])


def test_s3_conditions_and_message(account: Account) -> None:
    s3 = account.client(account.admin, "s3")
    s3.create_bucket(Bucket="data")
    s3.put_object(Bucket="data", Key="results/m/training/1/summary.json", Body=b"{}")
    session = account.session_for(
        policy(
            allow(
                "s3:ListBucket",
                "arn:aws:s3:::data",
                Condition={"StringLike": {"s3:prefix": "results/*/training/*"}},
            ),
            allow("s3:GetObject", "arn:aws:s3:::data/results/*"),
        )
    )
    client = account.client(session, "s3")
    listed = client.list_objects_v2(Bucket="data", Prefix="results/m/training/1/summary.json")
    assert [item["Key"] for item in listed["Contents"]] == ["results/m/training/1/summary.json"]
    error = denied(lambda: client.list_objects_v2(Bucket="data", Prefix="incoming/"))
    assert error.response["Error"]["Code"] == "AccessDenied"
    assert error.response["Error"]["Message"] == message(WORKER, "s3:ListBucket", "arn:aws:s3:::data")
    error = denied(lambda: client.put_object(Bucket="data", Key="results/x", Body=b"x"))
    assert "s3:PutObject on resource: arn:aws:s3:::data/results/x" in error.response["Error"]["Message"]


def test_a_session_policy_only_narrows(account: Account) -> None:
    make_tables(account, "T")
    role_policy = policy(allow("dynamodb:*", "*"))
    session = account.session_for(role_policy, session_policy=policy(allow("dynamodb:GetItem", "*")))
    dynamodb = account.client(session, "dynamodb")
    dynamodb.get_item(TableName="T", Key={"id": {"S": "a"}})
    assert "dynamodb:PutItem" in str(
        denied(lambda: dynamodb.put_item(TableName="T", Item={"id": {"S": "a"}}))
    )
    access_key = session.get_credentials().access_key
    principal = iam_gate.principal_for_access_key(access_key)
    assert principal.arn == WORKER
    assert principal.role_arn == f"arn:aws:iam::{ACCOUNT}:role/role-1"
    assert len(principal.session_policies) == 1


def test_over_http_with_a_threaded_moto_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "bootstrap")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "bootstrap")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bootstrap = boto3.session.Session(region_name=REGION)
        iam = bootstrap.client("iam", endpoint_url=endpoint)
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin", PolicyName="all", PolicyDocument=json.dumps(policy(allow("*", "*")))
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        with iam_gate.install(enforce=True):
            account = Account.__new__(Account)
            account.admin = boto3.session.Session(
                aws_access_key_id=key["AccessKeyId"],
                aws_secret_access_key=key["SecretAccessKey"],
                region_name=REGION,
            )
            account._roles, account.endpoint_url = 0, endpoint
            make_tables(account, "T", "U")
            dynamodb = account.client(
                account.session_for(policy(allow("dynamodb:PutItem", TABLE_T))), "dynamodb"
            )
            dynamodb.put_item(TableName="T", Item={"id": {"S": "a"}})
            error = denied(lambda: dynamodb.put_item(TableName="U", Item={"id": {"S": "a"}}))
            assert error.response["Error"]["Message"] == message(
                WORKER, "dynamodb:PutItem", ARN.format("dynamodb", "table/U")
            )
    finally:
        server.stop()


def test_uninstall_restores_moto_and_install_is_not_stacked() -> None:
    from moto import settings
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase.check_action_permitted
    before = settings.INITIAL_NO_AUTH_ACTION_COUNT
    installation = iam_gate.install(enforce=True)
    try:
        assert IAMRequestBase.check_action_permitted is not original
        assert settings.INITIAL_NO_AUTH_ACTION_COUNT == 0
        with pytest.raises(RuntimeError, match="already installed"):
            iam_gate.install()
    finally:
        installation.uninstall()
    assert IAMRequestBase.check_action_permitted is original
    assert before == settings.INITIAL_NO_AUTH_ACTION_COUNT


def test_assume_role_needs_the_trust_policy(account: Account) -> None:
    iam = account.client(account.admin, "iam")
    lambda_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(lambda_trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="fn", PolicyName="p", PolicyDocument=json.dumps(policy(allow("dynamodb:GetItem", TABLE_T)))
    )
    make_tables(account, "T")
    # The administrator may call sts:AssumeRole, but the role trusts Lambda only, as on AWS.
    error = denied(
        lambda: account.client(account.admin, "sts").assume_role(RoleArn=role, RoleSessionName="me")
    )
    assert error.response["Error"]["Code"] == "AccessDenied"
    assert error.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT}:user/admin is not authorized to perform: sts:AssumeRole "
        f"on resource: {role}"
    )
    # As Lambda assumes it: the function's credentials, enforced like any session.
    credentials = iam_gate.service_credentials(role, "lambda.amazonaws.com", session_name="fn-worker-1")
    session = boto3.session.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )
    dynamodb = account.client(session, "dynamodb")
    dynamodb.get_item(TableName="T", Key={"id": {"S": "a"}})
    error = denied(lambda: dynamodb.put_item(TableName="T", Item={"id": {"S": "a"}}))
    assert error.response["Error"]["Message"] == message(
        "arn:aws:sts::123456789012:assumed-role/fn/fn-worker-1", "dynamodb:PutItem", TABLE_T
    )
    assert iam_gate.principal_for_access_key(credentials["AccessKeyId"]).role_arn == role
    with pytest.raises(iam_gate.RoleNotAssumable, match=r"states\.amazonaws\.com"):
        iam_gate.service_credentials(role, "states.amazonaws.com")


def test_trust_policy_principals() -> None:
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "x-1"}},
            },
            {
                "Effect": "Deny",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/mallory"},
                "Action": "sts:AssumeRole",
            },
        ]
    }
    caller = {"caller_account": ACCOUNT, "context": {"sts:ExternalId": "x-1"}}
    assert iam_gate.trust_allows(trust, caller_arn=f"arn:aws:iam::{ACCOUNT}:user/alice", **caller)
    assert not iam_gate.trust_allows(trust, caller_arn=f"arn:aws:iam::{ACCOUNT}:user/mallory", **caller)
    assert not iam_gate.trust_allows(
        trust, caller_arn=f"arn:aws:iam::{ACCOUNT}:user/alice", caller_account=ACCOUNT
    )
    assert not iam_gate.trust_allows(
        trust,
        caller_arn="arn:aws:iam::999999999999:user/eve",
        caller_account="999999999999",
        context={"sts:ExternalId": "x-1"},
    )
    assert not iam_gate.trust_allows(trust, service="lambda.amazonaws.com")


# -- calls moto makes on a role's behalf ----------------------------------------------------------------


def test_authorize_calls_made_for_a_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key()["KeyMetadata"]["Arn"]
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="notify", Attributes={"KmsMasterKeyId": key})["TopicArn"]
        plain_topic = sns.create_topic(Name="plain")["TopicArn"]
        function = ARN.format("lambda", "function:upload-1")
        machine = ARN.format("states", "stateMachine:retrain")
        role = iam.create_role(RoleName="machine", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(
            RoleName="machine",
            PolicyName="p",
            PolicyDocument=json.dumps(
                policy(
                    allow("lambda:InvokeFunction", ARN.format("lambda", "function:upload-*")),
                    allow("sns:Publish", [topic, plain_topic]),
                    allow("states:StartExecution", machine),
                )
            ),
        )
        assert iam_gate.authorize(role, "lambda:InvokeFunction", function).allowed
        with pytest.raises(iam_gate.AccessDenied) as caught:
            iam_gate.authorize(
                role,
                "lambda:InvokeFunction",
                ARN.format("lambda", "function:archive-1"),
                session_name="exec-1",
            )
        assert str(caught.value) == message(
            "arn:aws:sts::123456789012:assumed-role/machine/exec-1",
            "lambda:InvokeFunction",
            ARN.format("lambda", "function:archive-1"),
        )
        assert (
            caught.value.action == "lambda:InvokeFunction"
            and caught.value.error_code == "AccessDeniedException"
        )
        sfn = boto3.client("stepfunctions", region_name=REGION)
        definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
        created = sfn.create_state_machine(name="retrain", definition=definition, roleArn=role)[
            "stateMachineArn"
        ]
        execution = sfn.start_execution(stateMachineArn=created, name="run-1")["executionArn"]
        assert iam_gate.state_machine_role(created) == iam_gate.state_machine_role(execution) == role
        assert iam_gate.authorize(role, "states:StartExecution", machine).allowed
        with pytest.raises(iam_gate.AccessDenied, match="states:StartExecution"):
            iam_gate.authorize(role, "states:StartExecution", machine + "-other")

        assert iam_gate.topic_key_arn(topic) == key
        assert len(iam_gate.authorize_publish(role, plain_topic)) == 1  # no key: sns:Publish only
        with pytest.raises(iam_gate.AccessDenied) as caught:
            iam_gate.authorize_publish(role, topic)  # encrypted, and the role may not use the key
        assert caught.value.action == "kms:GenerateDataKey" and caught.value.error_code == "KMSAccessDenied"
        assert f"on resource: {key}" in str(caught.value)
        iam.put_role_policy(
            RoleName="machine",
            PolicyName="key",
            PolicyDocument=json.dumps(
                policy(
                    allow(
                        ["kms:GenerateDataKey*", "kms:Decrypt"],
                        key,
                        Condition={"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
                    )
                )
            ),
        )
        assert [d.action for d in iam_gate.authorize_publish(role, topic)] == [
            "sns:Publish",
            "kms:GenerateDataKey",
            "kms:Decrypt",
        ]
        with pytest.raises(iam_gate.UnknownPrincipal):
            iam_gate.authorize(f"arn:aws:iam::{ACCOUNT}:role/nobody", "sns:Publish", topic)


# -- the template's roles and the calls the pipeline makes ----------------------------------------------


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return tpl.load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def cfn(sam: dict[str, Any]) -> dict[str, Any]:
    return tp.translate(sam, ROOT)


def test_the_template_allows_every_call_the_pipeline_makes(cfn: dict[str, Any]) -> None:
    documents = tp.role_documents(cfn)
    refused = [
        (call.principal, call.action, call.resource)
        for call in tp.PIPELINE_CALLS
        if not tp.decide_call(cfn, documents, call).allowed
    ]
    assert refused == []


def test_the_template_denies_each_call_on_a_neighbouring_resource(cfn: dict[str, Any]) -> None:
    documents = tp.role_documents(cfn)
    allowed = [
        (call.principal, call.action, call.neighbour)
        for call in tp.PIPELINE_CALLS
        if tp.decide_call(cfn, documents, call, neighbour=True).allowed
    ]
    assert allowed == []


def test_every_principal_of_the_template_is_covered(cfn: dict[str, Any]) -> None:
    """Each function, state machine and rule of the template has calls listed (a new one must be added)."""
    kinds = {"AWS::Lambda::Function", "AWS::StepFunctions::StateMachine", "AWS::Events::Rule"}
    principals = {name for name, body in cfn["Resources"].items() if body["Type"] in kinds}
    assert principals == {call.principal for call in tp.PIPELINE_CALLS}


def test_needed_statements_are_every_statement_but_the_log_delivery_ones(sam: dict[str, Any]) -> None:
    needed = tp.needed_statements(sam, ROOT)
    slots = tp._slots(sam)
    unneeded = sorted(
        {slot.body.get("Sid", "?") for slot in slots} - {n.statement.get("Sid", "?") for n in needed}
    )
    # State machine log delivery is not applied by the local stack and no pipeline call depends on it.
    assert unneeded == ["DeliverExecutionLogs"]
    assert len(needed) == len(slots) - 2
    for role, index, statement in needed:
        denied_actions = {call.action for call in tp.denied_calls(sam, ROOT, role, index)}
        assert denied_actions, (role, index, statement)
        mutant = tp.remove_statement(sam, role, index)
        assert statement not in [s for s in _statements_of(mutant, role)]


def _statements_of(sam: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [slot.body for slot in tp._slots(sam) if slot.role == role]


def test_a_mutant_is_written_where_the_local_stack_can_build_it(sam: dict[str, Any], tmp_path: Path) -> None:
    role, index, statement = next(
        n for n in tp.needed_statements(sam, ROOT) if n.role == "UploadFunctionRole"
    )
    mutant = tp.remove_statement(sam, role, index)
    path = tp.write_template(mutant, tmp_path / "template.json", ROOT)
    built = tpl.build(path, {}, REGION)
    policies = built.cloudformation["Resources"]["UploadFunctionRole"]["Properties"]["Policies"]
    sids = [s.get("Sid") for p in policies for s in p["PolicyDocument"]["Statement"]]
    statements = _statements_of(sam, "UploadFunctionRole")
    assert statement["Sid"] not in sids and len(sids) == len(statements) - 1
    assert built.functions["UploadFunction"].module_path == ROOT / "functions" / "upload" / "app.py"
