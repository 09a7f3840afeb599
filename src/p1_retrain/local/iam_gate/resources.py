"""The resource ARNs AWS authorizes a call against, for the services moto authorizes against ``*``.

``checks_for(service, operation, params, ...)`` returns the (action, resource ARN) pairs one request needs:
usually one; several for the multi-table DynamoDB calls (a transaction needs each item's own action on
its table, as AWS authorizes it). ``None`` means "nothing to resolve here: keep moto's resource".
Secret names and KMS aliases are looked up in moto's backends, so a secret's ARN carries moto's random
suffix and an alias stands for its key, as on AWS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Check:
    action: str
    resource: str


@dataclass(frozen=True)
class Scope:
    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )


def _is_arn(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("arn:")


# -- DynamoDB ---------------------------------------------------------------------------------------------

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _table_arn(scope: Scope, table: str, index: str | None = None) -> str:
    arn = table if _is_arn(table) else scope.arn("dynamodb", f"table/{table}")
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(operation: str, params: Mapping[str, Any], scope: Scope) -> list[Check] | None:
    if operation == "TransactWriteItems":
        checks = []
        for item in params.get("TransactItems", []):
            for kind, body in item.items():
                checks.append(
                    Check(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", _table_arn(scope, body["TableName"]))
                )
        return checks
    if operation == "TransactGetItems":
        return [
            Check("dynamodb:GetItem", _table_arn(scope, item["Get"]["TableName"]))
            for item in params.get("TransactItems", [])
        ]
    if operation in {"BatchGetItem", "BatchWriteItem"}:
        return [
            Check(f"dynamodb:{operation}", _table_arn(scope, name)) for name in params.get("RequestItems", {})
        ]
    if "TableName" in params:
        index = params.get("IndexName") if operation in {"Query", "Scan"} else None
        return [Check(f"dynamodb:{operation}", _table_arn(scope, params["TableName"], index))]
    for name in ("ResourceArn", "StreamArn", "BackupArn", "TableArn"):
        if _is_arn(params.get(name)):
            return [Check(f"dynamodb:{operation}", params[name])]
    return None


# -- Secrets Manager --------------------------------------------------------------------------------------


def secret_arn(secret_id: str, scope: Scope) -> str:
    """A secret's full ARN (with the random suffix) from its name, ARN or partial ARN; a secret that does
    not exist is named as the request named it, so the policy still decides (AWS denies before it looks)."""
    try:
        from moto.secretsmanager.models import secretsmanager_backends

        secret = secretsmanager_backends[scope.account][scope.region].secrets.get(secret_id)
        if secret is not None:
            return str(secret.arn)
    except (ImportError, KeyError):
        pass
    return secret_id if _is_arn(secret_id) else scope.arn("secretsmanager", f"secret:{secret_id}")


def _secretsmanager(operation: str, params: Mapping[str, Any], scope: Scope) -> list[Check] | None:
    action = f"secretsmanager:{operation}"
    if "SecretId" in params:
        return [Check(action, secret_arn(str(params["SecretId"]), scope))]
    if operation == "BatchGetSecretValue" and params.get("SecretIdList"):
        return [
            Check("secretsmanager:GetSecretValue", secret_arn(str(s), scope)) for s in params["SecretIdList"]
        ]
    if operation == "CreateSecret" and "Name" in params:
        return [Check(action, scope.arn("secretsmanager", f"secret:{params['Name']}"))]
    return None


# -- SNS --------------------------------------------------------------------------------------------------


def _sns(operation: str, params: Mapping[str, Any], scope: Scope) -> list[Check] | None:
    action = f"sns:{operation}"
    for name in ("TopicArn", "TargetArn", "ResourceArn"):
        if _is_arn(params.get(name)):
            return [Check(action, str(params[name]))]
    if _is_arn(params.get("SubscriptionArn")):  # <topic arn>:<subscription id>
        return [Check(action, str(params["SubscriptionArn"]).rsplit(":", 1)[0])]
    if operation == "CreateTopic" and "Name" in params:
        return [Check(action, scope.arn("sns", str(params["Name"])))]
    return None


# -- Step Functions ---------------------------------------------------------------------------------------


def _states(operation: str, params: Mapping[str, Any], scope: Scope) -> list[Check] | None:
    action = f"states:{operation}"
    for name in ("stateMachineArn", "executionArn", "activityArn", "resourceArn", "mapRunArn"):
        if _is_arn(params.get(name)):
            return [Check(action, str(params[name]))]
    if operation == "CreateStateMachine" and "name" in params:
        return [Check(action, scope.arn("states", f"stateMachine:{params['name']}"))]
    if operation == "CreateActivity" and "name" in params:
        return [Check(action, scope.arn("states", f"activity:{params['name']}"))]
    return None


# -- KMS --------------------------------------------------------------------------------------------------


def key_arn(key_id: str, scope: Scope) -> str:
    """A key's ARN from its id, ARN, alias name or alias ARN (an alias stands for its target key)."""
    try:
        from moto.kms.models import kms_backends

        backend = kms_backends[scope.account][scope.region]
        key = backend.keys.get(backend.any_id_to_key_id(key_id))
        if key is not None:
            return str(key.arn)
    except (ImportError, KeyError, AttributeError, TypeError):
        pass
    if _is_arn(key_id):
        return key_id
    return scope.arn("kms", key_id if key_id.startswith("alias/") else f"key/{key_id}")


def _kms(operation: str, params: Mapping[str, Any], scope: Scope) -> list[Check] | None:
    action = f"kms:{operation}"
    if operation in {"CreateAlias", "UpdateAlias", "DeleteAlias"} and "AliasName" in params:
        checks = [Check(action, scope.arn("kms", str(params["AliasName"])))]
        if "TargetKeyId" in params:
            checks.append(Check(action, key_arn(str(params["TargetKeyId"]), scope)))
        return checks
    for name in ("KeyId", "DestinationKeyId"):
        if name in params:
            return [Check(action, key_arn(str(params[name]), scope))]
    return None


# -- Lambda (REST: the function is in the path) -----------------------------------------------------------

_FUNCTION_PATH = re.compile(r"/functions/(?P<name>[^/?]+)")


def _lambda(operation: str, params: Mapping[str, Any], scope: Scope, path: str = "") -> list[Check] | None:
    match = _FUNCTION_PATH.search(path)
    name = unquote(match.group("name")) if match else params.get("FunctionName")
    if not name:
        return None
    if _is_arn(name):
        arn = str(name)
    elif ":" in name:  # "account:function:name" or "name:qualifier"
        arn = scope.arn("lambda", f"function:{name.split(':function:')[-1]}")
    else:
        arn = scope.arn("lambda", f"function:{name}")
    action = (
        "lambda:InvokeFunction"
        if operation in {"Invoke", "InvokeAsync", "InvokeWithResponseStream"}
        else f"lambda:{operation}"
    )
    return [Check(action, arn)]


_RESOLVERS: dict[str, Callable[[str, Mapping[str, Any], Scope], list[Check] | None]] = {
    "dynamodb": _dynamodb,
    "secretsmanager": _secretsmanager,
    "sns": _sns,
    "states": _states,
    "kms": _kms,
}

SERVICES = frozenset({*_RESOLVERS, "lambda"})


def checks_for(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    partition: str = "aws",
    path: str = "",
) -> list[Check] | None:
    """The (action, resource) pairs AWS authorizes for one request; None when there is nothing to resolve."""
    scope = Scope(partition, region, account)
    if service == "lambda":
        return _lambda(operation, params, scope, path)
    resolver = _RESOLVERS.get(service)
    return resolver(operation, params, scope) if resolver else None
