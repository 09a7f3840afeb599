"""Who is calling, and which policies they hold: roles (and their STS sessions) and users, read from
moto's IAM/STS backends (same process as the moto server) or through a boto3 IAM client."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from p1_retrain.local.iam_gate.evaluator import PolicyDocument

DEFAULT_ACCOUNT = "123456789012"


class UnknownPrincipal(LookupError):
    """An access key, role or user moto does not know."""


@dataclass(frozen=True)
class Principal:
    """The caller: ``arn`` is what AWS names in its messages (``arn:aws:sts::<account>:assumed-role/<role>/
    <session>`` for a role session), ``policies`` its identity-based policies (inline and attached),
    ``session_policies`` the policy passed to AssumeRole, if any (it can only narrow the role's)."""

    arn: str
    account_id: str
    policies: tuple[PolicyDocument, ...]
    role_arn: str | None = None
    session_policies: tuple[PolicyDocument, ...] = field(default=())


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else DEFAULT_ACCOUNT


def _iam_backend(account_id: str, partition: str = "aws") -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account_id][partition]


def documents_from_moto(items: Iterable[Any]) -> list[PolicyDocument]:
    """Turn what moto stores (managed ``Policy`` objects, inline documents as text, inline user/group
    policies as dicts) into parsed documents."""
    documents: list[PolicyDocument] = []
    for index, item in enumerate(items):
        versions = getattr(item, "versions", None)
        if versions is not None:
            default = next(version for version in versions if version.is_default)
            documents.append(PolicyDocument.parse(str(item.arn), default.document))
        elif isinstance(item, str):
            documents.append(PolicyDocument.parse(f"inline-{index}", item))
        elif isinstance(item, dict) and "policy_document" in item:
            documents.append(
                PolicyDocument.parse(str(item.get("policy_name", index)), item["policy_document"])
            )
        elif isinstance(item, dict) and "Statement" in item:  # an inline policy as CloudFormation put it
            documents.append(PolicyDocument.parse(f"inline-{index}", item))
        elif isinstance(item, tuple) and len(item) == 2:
            documents.append(PolicyDocument.parse(str(item[0]), item[1]))
        else:
            raise TypeError(f"unrecognised policy object {type(item).__name__}")
    return documents


def role_policies(role_arn: str, iam_backend: Any | None = None) -> list[PolicyDocument]:
    """Inline and attached managed policies of a role, from moto's IAM backend."""
    backend = iam_backend or _iam_backend(_account(role_arn), _partition(role_arn))
    from moto.iam.exceptions import NotFoundException

    try:
        role = backend.get_role_by_arn(role_arn)
    except NotFoundException:
        raise UnknownPrincipal(f"no role {role_arn}") from None
    documents = [PolicyDocument.parse(name, document) for name, document in role.policies.items()]
    attached, _ = backend.list_attached_role_policies(role.name, max_items=1000)
    return documents + documents_from_moto(attached)


def role_policies_from_client(iam: Any, role_name: str) -> list[PolicyDocument]:
    """The same through the IAM API (any boto3 IAM client, e.g. one pointed at the moto server)."""
    documents: list[PolicyDocument] = []
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=role_name):
        for name in page["PolicyNames"]:
            answer = iam.get_role_policy(RoleName=role_name, PolicyName=name)
            documents.append(PolicyDocument.parse(name, answer["PolicyDocument"]))
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page["AttachedPolicies"]:
            policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            documents.append(PolicyDocument.parse(policy["Arn"], version["PolicyVersion"]["Document"]))
    return documents


def session_arn(role_arn: str, session_name: str) -> str:
    """``arn:aws:iam::A:role/path/R`` → ``arn:aws:sts::A:assumed-role/R/<session>`` (AWS drops the path)."""
    role_name = role_arn.rsplit("/", 1)[-1]
    return f"arn:{_partition(role_arn)}:sts::{_account(role_arn)}:assumed-role/{role_name}/{session_name}"


def role_principal(
    role_arn: str,
    session_name: str = "local",
    iam_backend: Any | None = None,
    *,
    policies: Sequence[PolicyDocument] | None = None,
) -> Principal:
    """A session of ``role_arn`` with the role's policies (from moto's IAM backend unless ``policies``)."""
    documents = tuple(policies) if policies is not None else tuple(role_policies(role_arn, iam_backend))
    return Principal(
        arn=session_arn(role_arn, session_name),
        account_id=_account(role_arn),
        policies=documents,
        role_arn=role_arn,
    )


def principal_for_access_key(access_key_id: str, account_id: str | None = None) -> Principal:
    """The principal behind an access key: an STS session (AssumeRole) or an IAM user's key.

    moto derives the account from the key itself when no account is given (as its request handling does).
    """
    from moto.iam.models import get_account_id_from
    from moto.sts.models import sts_backends

    account = account_id or get_account_id_from(access_key_id)
    for assumed in sts_backends[account]["aws"].assumed_roles:
        if assumed.access_key_id == access_key_id:
            session = tuple(
                [PolicyDocument.parse("session-policy", assumed.policy)] if assumed.policy else []
            )
            principal = role_principal(assumed.role_arn, assumed.session_name)
            return Principal(
                principal.arn, principal.account_id, principal.policies, assumed.role_arn, session
            )
    backend = _iam_backend(account)
    for user in backend.users.values():
        if any(key.access_key_id == access_key_id for key in user.access_keys):
            return Principal(user.arn, account, tuple(user_policies(backend, user.name)))
    raise UnknownPrincipal(f"no role session or user holds access key {access_key_id[:4]}…")


def user_policies(backend: Any, user_name: str) -> list[PolicyDocument]:
    """A user's inline and attached policies and those of its groups (as moto collects them)."""
    items: list[Any] = [
        backend.get_user_policy(user_name, name) for name in backend.list_user_policies(user_name)
    ]
    attached, _ = backend.list_attached_user_policies(user_name, max_items=1000)
    items += attached
    for group in backend.get_groups_for_user(user_name):
        items += [
            backend.get_group_policy(group.name, name) for name in backend.list_group_policies(group.name)
        ]
        group_attached, _ = backend.list_attached_group_policies(group.name, max_items=1000)
        items += group_attached
    return documents_from_moto(items)
