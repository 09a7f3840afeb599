"""Role trust policies: who may assume a role, and credentials for a role as the AWS service it trusts.

On AWS, ``sts:AssumeRole`` needs both the caller's identity policy and the role's trust policy to agree.
A trust policy names principals: ``"*"``, an account (``"123456789012"`` or its ``:root`` ARN: any principal
of that account its own policies allow), a user or role ARN (a role's sessions included), or a service
(``lambda.amazonaws.com``). No request a client sends comes from a service, so a service principal is
only reached through :func:`service_credentials`, which is what the local stack uses to run a function as
its role the way Lambda does (a role that does not trust Lambda cannot be used, as on AWS).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from p1_retrain.local.iam_gate.evaluator import ContextValue, _listify, _normalise_context, conditions_hold


class RoleNotAssumable(PermissionError):
    """The role's trust policy does not let this principal (or service) assume it."""


def _principal_values(statement: Mapping[str, Any], kind: str) -> list[str] | None:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if not isinstance(principal, Mapping) or kind not in principal:
        return None
    return [str(value) for value in _listify(principal[kind])]


def _aws_principal_matches(expected: str, caller_arn: str, caller_role_arn: str | None, account: str) -> bool:
    if expected == "*":
        return True
    if expected in {account, f"arn:aws:iam::{account}:root"}:
        return True
    return expected in {caller_arn, caller_role_arn}


def trust_allows(
    trust_policy: str | Mapping[str, Any],
    *,
    caller_arn: str | None = None,
    caller_role_arn: str | None = None,
    caller_account: str | None = None,
    service: str | None = None,
    action: str = "sts:AssumeRole",
    context: Mapping[str, ContextValue] | None = None,
) -> bool:
    """Whether the trust policy lets the caller (an IAM principal or ``service``) perform ``action``."""
    document = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    keys = _normalise_context(context)
    allowed = False
    for statement in _listify(document.get("Statement", [])):
        actions = [str(item).lower() for item in _listify(statement.get("Action", []))]
        if not any(item in {action.lower(), "sts:*", "*"} for item in actions):
            continue
        if service is not None:
            services = _principal_values(statement, "Service") or []
            matched = "*" in (_principal_values(statement, "AWS") or []) or service in services
        else:
            principals = _principal_values(statement, "AWS") or []
            matched = any(
                _aws_principal_matches(p, caller_arn or "", caller_role_arn, caller_account or "")
                for p in principals
            )
        if not matched or not conditions_hold(statement.get("Condition") or {}, keys):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def service_credentials(
    role_arn: str,
    service: str = "lambda.amazonaws.com",
    session_name: str = "local",
    *,
    duration_seconds: int = 3600,
    region: str = "us-east-1",
) -> dict[str, str]:
    """Temporary credentials for ``role_arn`` as ``service`` assumes it (moto's STS backend, no request):
    ``{"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}``. Raises
    :class:`RoleNotAssumable` when the role's trust policy does not trust ``service``."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    from p1_retrain.local.iam_gate.principals import UnknownPrincipal

    partition, account = role_arn.split(":")[1], role_arn.split(":")[4]
    try:
        role = iam_backends[account][partition].get_role_by_arn(role_arn)
    except NotFoundException:
        raise UnknownPrincipal(f"no role {role_arn}") from None
    if not trust_allows(role.assume_role_policy_document, service=service):
        raise RoleNotAssumable(
            f"The role {role_arn} cannot be assumed by {service}: its trust policy does not allow it"
        )
    assumed = sts_backends[account][partition].assume_role(
        region_name=region,
        role_session_name=session_name,
        role_arn=role_arn,
        policy="",
        duration=duration_seconds,
        external_id="",
    )
    return {
        "AccessKeyId": assumed.access_key_id,
        "SecretAccessKey": assumed.secret_access_key,
        "SessionToken": assumed.session_token,
        "Expiration": assumed.expiration.isoformat(),
    }
