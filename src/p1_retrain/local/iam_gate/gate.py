"""Enforce identity policies as AWS does, on top of moto's own request authorization.

``install()`` replaces moto's ``IAMRequestBase.check_action_permitted`` — the one place every request
moto authorizes (S3 and every other service) reaches once ``INITIAL_NO_AUTH_ACTION_COUNT`` is exhausted —
so that, for each request:

- the resource is the real ARN: moto passes ``*`` for DynamoDB, Secrets Manager, SNS, Step Functions, KMS
  and Lambda, and :mod:`.resources` names the table, secret, topic, state machine, key or function;
- the decision comes from :mod:`.evaluator` (explicit deny, then allow, default deny; NotAction,
  NotResource, wildcards, conditions), with the request's condition keys (``aws:SecureTransport``,
  ``aws:PrincipalArn``, ``aws:RequestedRegion``, ``s3:prefix``, ...); an AssumeRole session policy can only
  narrow the role's permissions;
- a denial is answered as the service answers it: ``AccessDeniedException`` (JSON services),
  ``AuthorizationError`` (SNS), ``AccessDenied`` (S3 and the rest), with AWS's message
  ``User: <principal> is not authorized to perform: <action> on resource: <arn> because no
  identity-based policy allows the <action> action``.

``authorize(role_arn, action, resource_arn)`` is the same decision for calls moto makes on a role's
behalf without any request (a state machine invoking a function or publishing to a topic, a rule starting
an execution); ``authorize_publish`` adds the KMS permissions an encrypted topic needs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from p1_retrain.local.iam_gate.evaluator import ContextValue, Decision, Effect, PolicyDocument, evaluate
from p1_retrain.local.iam_gate.principals import (
    Principal,
    documents_from_moto,
    role_principal,
)
from p1_retrain.local.iam_gate.resources import SERVICES, Check, Scope, checks_for, key_arn

# The service's own error code for a denied request (AWS's, by service signing name).
JSON_DENIAL = "AccessDeniedException"
ERROR_CODES = {
    "dynamodb": JSON_DENIAL,
    "secretsmanager": JSON_DENIAL,
    "states": JSON_DENIAL,
    "kms": JSON_DENIAL,
    "lambda": JSON_DENIAL,
    "events": JSON_DENIAL,
    "logs": JSON_DENIAL,
    "sns": "AuthorizationError",
}
HTTP_STATUS = {"lambda": 403, "sns": 403}  # the JSON services answer 400, S3 and the query services 403


class AccessDenied(Exception):
    """A call AWS would deny. ``str()`` is AWS's message; ``action``, ``resource`` and ``principal`` name
    the request; ``error_code`` is what the service would answer (``AccessDeniedException``,
    ``AuthorizationError``, ``KMSAccessDenied``, ``AccessDenied``)."""

    def __init__(self, principal: str, decision: Decision, error_code: str | None = None) -> None:
        self.principal = principal
        self.action = decision.action
        self.resource = decision.resource
        self.explicit = decision.effect is Effect.EXPLICIT_DENY
        self.decision = decision
        self.error_code = error_code or ERROR_CODES.get(decision.action.split(":", 1)[0], "AccessDenied")
        super().__init__(denial_message(principal, decision))


def denial_message(principal: str, decision: Decision) -> str:
    """AWS's wording for an identity-policy denial."""
    reason = (
        "with an explicit deny in an identity-based policy"
        if decision.effect is Effect.EXPLICIT_DENY
        else f"because no identity-based policy allows the {decision.action} action"
    )
    return (
        f"User: {principal} is not authorized to perform: {decision.action} "
        f"on resource: {decision.resource} {reason}"
    )


def decide(
    principal: Principal, action: str, resource: str, context: Mapping[str, ContextValue] | None = None
) -> Decision:
    """The identity policies decide; a session policy, when there is one, must allow too."""
    context = {**base_context(principal), **(context or {})}
    decision = evaluate(principal.policies, action, resource, context)
    if decision.allowed and principal.session_policies:
        session = evaluate(principal.session_policies, action, resource, context)
        if not session.allowed:
            return session
    return decision


def base_context(principal: Principal) -> dict[str, ContextValue]:
    now = time.time()
    return {
        "aws:PrincipalArn": principal.role_arn or principal.arn,
        "aws:PrincipalAccount": principal.account_id,
        "aws:SecureTransport": "true" if _SETTINGS["secure_transport"] else "false",
        "aws:CurrentTime": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
    }


# -- calls made on a role's behalf ------------------------------------------------------------------------


def authorize(
    role_arn: str,
    action: str,
    resource_arn: str,
    context: Mapping[str, ContextValue] | None = None,
    *,
    session_name: str = "local",
    error_code: str | None = None,
    policies: Sequence[PolicyDocument] | None = None,
) -> Decision:
    """Allow ``action`` on ``resource_arn`` for a session of ``role_arn`` or raise :class:`AccessDenied`.

    The role's policies come from moto's IAM backend (the deployed stack) unless ``policies`` are given.
    """
    principal = role_principal(role_arn, session_name, policies=policies)
    decision = decide(principal, action, resource_arn, context)
    if not decision.allowed:
        raise AccessDenied(principal.arn, decision, error_code)
    return decision


def state_machine_role(state_machine_arn: str) -> str:
    """The role a state machine (or one of its executions) runs as, from moto's Step Functions backend."""
    from moto.stepfunctions.models import stepfunctions_backends

    parts = state_machine_arn.split(":")
    machine_arn = (
        ":".join([*parts[:5], "stateMachine", parts[6]]) if parts[5] == "execution" else state_machine_arn
    )
    backend = stepfunctions_backends[parts[4]][parts[3]]
    return str(backend.describe_state_machine(machine_arn).roleArn)


def topic_key_arn(topic_arn: str) -> str | None:
    """The KMS key ARN that encrypts ``topic_arn`` in moto's SNS backend (None when not encrypted)."""
    from moto.sns.models import sns_backends

    parts = topic_arn.split(":")
    topic = sns_backends[parts[4]][parts[3]].topics.get(topic_arn)
    key = getattr(topic, "kms_master_key_id", "") if topic is not None else ""
    if not key:
        return None
    return key_arn(key, Scope(parts[1], parts[3], parts[4]))


TOPIC_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def _via_sns(topic_arn: str) -> dict[str, ContextValue]:
    """The condition keys of the KMS calls SNS makes for a publisher."""
    region, account = topic_arn.split(":")[3], topic_arn.split(":")[4]
    return {"kms:ViaService": f"sns.{region}.amazonaws.com", "kms:CallerAccount": account}


def authorize_publish(
    role_arn: str,
    topic_arn: str,
    *,
    session_name: str = "local",
    policies: Sequence[PolicyDocument] | None = None,
    key: str | None = None,
) -> list[Decision]:
    """``sns:Publish`` on the topic and, for an encrypted topic, ``kms:GenerateDataKey`` and ``kms:Decrypt``
    on its key (requested by SNS for the caller, so ``kms:ViaService`` is SNS). ``key`` defaults to the
    topic's key in moto. A KMS denial is SNS's ``KMSAccessDenied``."""
    decisions = [authorize(role_arn, "sns:Publish", topic_arn, session_name=session_name, policies=policies)]
    key = key or topic_key_arn(topic_arn)
    if key:
        context = _via_sns(topic_arn)
        for action in TOPIC_KEY_ACTIONS:
            decisions.append(
                authorize(
                    role_arn,
                    action,
                    key,
                    context,
                    session_name=session_name,
                    policies=policies,
                    error_code="KMSAccessDenied",
                )
            )
    return decisions


# -- moto's request authorization -------------------------------------------------------------------------

_SETTINGS: dict[str, Any] = {"secure_transport": True}
_LOCK = threading.Lock()
_INSTALLED: list[Installation] = []


def request_params(body: Any, path: str, data: Any = None) -> dict[str, Any]:
    """The request's parameters: the JSON body (JSON protocols), or the form fields and the query string
    (query and REST protocols)."""
    params: dict[str, Any] = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    if isinstance(data, Mapping):
        for name, value in data.items():
            params[str(name)] = value[0] if isinstance(value, list) and len(value) == 1 else value
    raw = (
        body.decode("utf-8", "replace") if isinstance(body, bytes) else body if isinstance(body, str) else ""
    )
    text = raw.strip()
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            loaded = {}
        if isinstance(loaded, dict):
            params.update(loaded)
    elif text and "=" in text and not text.startswith("<"):
        params.update(parse_qsl(text, keep_blank_values=True))
    return params


def request_context(service: str, operation: str, params: Mapping[str, Any], region: str) -> dict[str, str]:
    """Condition keys the request itself supplies (the service-specific ones the template uses, and more)."""
    context = {"aws:RequestedRegion": region}
    if service == "s3" and operation in {"ListBucket", "ListObjects", "ListObjectsV2", "ListObjectVersions"}:
        for name in ("prefix", "delimiter", "max-keys"):
            if name in params:
                context[f"s3:{name}"] = str(params[name])
    return context


def _session_policies(request: Any) -> tuple[PolicyDocument, ...]:
    """The policy passed to AssumeRole for this session, if any (moto keeps it, but never applies it)."""
    key_id = getattr(request._access_key, "_access_key_id", None)
    if not key_id or not hasattr(request._access_key, "_owner_role_name"):
        return ()
    from moto.sts.models import sts_backends

    for assumed in sts_backends[request.account_id][request._access_key.partition].assumed_roles:
        if assumed.access_key_id == key_id:
            return (PolicyDocument.parse("session-policy", assumed.policy),) if assumed.policy else ()
    return ()


def _service_error(request: Any, denied: AccessDenied) -> Exception:
    from moto.core.exceptions import JsonRESTError
    from moto.iam.access_control import S3IAMRequest

    service = request._service
    if isinstance(request, S3IAMRequest):
        from moto.s3.exceptions import S3AccessDeniedError

        error = S3AccessDeniedError()
        error.message = str(denied)
        return error
    code = ERROR_CODES.get(service)
    if code == JSON_DENIAL:
        json_error = JsonRESTError(code, str(denied))
        json_error.code = HTTP_STATUS.get(service, 400)
        return json_error
    return query_error(code or "AccessDenied", str(denied), HTTP_STATUS.get(service, 403))


def query_error(code: str, message: str, status: int) -> Exception:
    """A query-protocol service's error (SNS, SQS, IAM, STS) as AWS shapes it, with its request id
    (``<ErrorResponse><Error>...</Error><RequestId>``; Step Functions' SNS task reads the id)."""
    import uuid

    from moto.core.exceptions import _RESTError
    from xmltodict import unparse

    error = _RESTError(code, message)
    error.code = status
    error.description = unparse(
        {
            "ErrorResponse": {
                "Error": {"Type": "Sender", "Code": code, "Message": message},
                "RequestId": str(uuid.uuid4()),
            }
        },
        full_document=True,
    )
    return error


def check_request(request: Any, resource: str) -> None:
    """What moto's ``check_action_permitted`` does, with real ARNs and AWS's evaluation."""
    action = str(request._action)  # for S3, moto already names the IAM action (ListBucket, GetObjectVersion)
    if action == "sts:GetCallerIdentity":  # always allowed, even against an explicit deny
        return
    service, _, operation = action.partition(":")
    params = request_params(request._body, request._path, request._data)
    checks: list[Check] | None = None
    if resource == "*" and service in SERVICES:
        partition = "aws-cn" if request._region.startswith("cn-") else "aws"
        checks = checks_for(
            service,
            operation,
            params,
            region=request._region,
            account=request.account_id,
            partition=partition,
            path=request._path,
        )
    principal = Principal(
        arn=request._access_key.arn,
        account_id=request.account_id,
        policies=tuple(documents_from_moto(request._access_key.collect_policies())),
        role_arn=_role_arn(request),
        session_policies=_session_policies(request),
    )
    context = request_context(service, operation, params, request._region)
    checks = checks or [Check(action, resource)]
    for check in checks:
        decision = decide(principal, check.action, check.resource, context)
        if not decision.allowed:
            raise _service_error(request, AccessDenied(principal.arn, decision))
    if action == "sns:Publish":
        for check in checks:
            _check_topic_key(request, principal, check.resource)
    if action == "sts:AssumeRole":
        _check_trust(request, principal, action, resource, params)


def _check_topic_key(request: Any, principal: Principal, topic_arn: str) -> None:
    """Publishing to an encrypted topic also needs its key: SNS asks KMS for the caller
    (``kms:ViaService`` = SNS) and answers ``KMSAccessDenied`` when KMS refuses."""
    if topic_arn.count(":") != 5:
        return
    key = topic_key_arn(topic_arn)
    if not key:
        return
    context = {"aws:RequestedRegion": topic_arn.split(":")[3], **_via_sns(topic_arn)}
    for action in TOPIC_KEY_ACTIONS:
        decision = decide(principal, action, key, context)
        if not decision.allowed:
            raise query_error("KMSAccessDenied", str(AccessDenied(principal.arn, decision)), 400)


def _check_trust(
    request: Any, principal: Principal, action: str, resource: str, params: Mapping[str, Any]
) -> None:
    """The role's trust policy must let the caller assume it (a role that does not exist cannot be)."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends

    from p1_retrain.local.iam_gate.trust import trust_allows

    parts = resource.split(":")
    trusted = False
    if len(parts) == 6 and parts[5].startswith("role/"):
        try:
            role = iam_backends[parts[4]][parts[1]].get_role_by_arn(resource)
        except NotFoundException:
            role = None
        if role is not None:
            context = {
                "sts:ExternalId": params.get("ExternalId"),
                "sts:RoleSessionName": params.get("RoleSessionName"),
            }
            trusted = trust_allows(
                role.assume_role_policy_document,
                caller_arn=principal.arn,
                caller_role_arn=principal.role_arn,
                caller_account=principal.account_id,
                action=action,
                context={name: value for name, value in context.items() if value is not None},
            )
    if not trusted:
        raise query_error(
            "AccessDenied",
            f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource}",
            403,
        )


def _role_arn(request: Any) -> str | None:
    role_name = getattr(request._access_key, "_owner_role_name", None)
    if not role_name:
        return None
    partition = request._access_key.partition
    return f"arn:{partition}:iam::{request.account_id}:role/{role_name}"


class Installation:
    """The installed gate; ``uninstall()`` (or leaving the ``with`` block) restores moto's own check."""

    def __init__(self, original: Any, enforce: bool, saved_count: Any, saved_requests: int) -> None:
        self._original = original
        self._enforce = enforce
        self._saved_count = saved_count
        self._saved_requests = saved_requests
        self.active = True

    def uninstall(self) -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.iam.access_control import IAMRequestBase

        with _LOCK:
            if not self.active:
                return
            IAMRequestBase.check_action_permitted = self._original  # type: ignore[method-assign]
            if self._enforce:
                settings.INITIAL_NO_AUTH_ACTION_COUNT = self._saved_count
                ActionAuthenticatorMixin.request_count = self._saved_requests
            self.active = False
            _INSTALLED.remove(self)

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()


def install(*, enforce: bool = False, secure_transport: bool = True) -> Installation:
    """Make moto's request authorization use real ARNs and AWS's evaluation (this process's moto: the
    in-process mock or a ``ThreadedMotoServer`` started here).

    ``enforce=True`` also turns authorization on for every request from now on (moto's
    ``INITIAL_NO_AUTH_ACTION_COUNT = 0``), restored by ``uninstall()``. ``secure_transport`` is the value of
    ``aws:SecureTransport``: the local endpoint stands in for AWS's TLS endpoints, so it is true unless a
    test says otherwise. Installing twice is refused (uninstall first).
    """
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequestBase

    with _LOCK:
        if _INSTALLED:
            raise RuntimeError("the IAM gate is already installed in this process")
        original = IAMRequestBase.check_action_permitted
        saved_count, saved_requests = (
            settings.INITIAL_NO_AUTH_ACTION_COUNT,
            ActionAuthenticatorMixin.request_count,
        )

        def check_action_permitted(self: Any, resource: str) -> None:
            check_request(self, resource)

        IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign]
        if enforce:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
            ActionAuthenticatorMixin.request_count = 0
        _SETTINGS["secure_transport"] = secure_transport
        installation = Installation(original, enforce, saved_count, saved_requests)
        _INSTALLED.append(installation)
        return installation
