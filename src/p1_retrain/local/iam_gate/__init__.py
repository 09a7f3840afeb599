"""IAM as AWS enforces it, for the local stack (moto).

- :func:`install` — moto's request authorization with real resource ARNs (DynamoDB tables, secrets,
  topics, state machines, KMS keys, functions, where moto itself passes ``*``), AWS's evaluation logic and
  AWS's AccessDenied answers.
- :func:`authorize` / :func:`authorize_publish` — the same decision for calls moto makes on a role's behalf
  (a state machine invoking a function or publishing to a topic, a rule starting an execution).
- :func:`service_credentials` — credentials for a role as the service it trusts assumes it (a function's
  role as Lambda does); ``sts:AssumeRole`` requests are checked against the role's trust policy.
- :func:`evaluate` — the policy evaluator itself (identity-based policies: explicit deny, allow, default
  deny; NotAction/NotResource, wildcards, conditions).
- :mod:`.template_policies` — the template's role policies, the calls the pipeline makes, and which
  statements those calls need (for mutation tests).
"""

from __future__ import annotations

from p1_retrain.local.iam_gate.evaluator import (
    Decision,
    Effect,
    PolicyDocument,
    UnsupportedCondition,
    evaluate,
)
from p1_retrain.local.iam_gate.gate import (
    AccessDenied,
    Installation,
    authorize,
    authorize_publish,
    decide,
    denial_message,
    install,
    state_machine_role,
    topic_key_arn,
)
from p1_retrain.local.iam_gate.principals import (
    Principal,
    UnknownPrincipal,
    principal_for_access_key,
    role_policies,
    role_policies_from_client,
    role_principal,
    session_arn,
)
from p1_retrain.local.iam_gate.resources import Check, checks_for, key_arn, secret_arn
from p1_retrain.local.iam_gate.trust import RoleNotAssumable, service_credentials, trust_allows

__all__ = [
    "AccessDenied",
    "Check",
    "Decision",
    "Effect",
    "Installation",
    "PolicyDocument",
    "Principal",
    "RoleNotAssumable",
    "UnknownPrincipal",
    "UnsupportedCondition",
    "authorize",
    "authorize_publish",
    "checks_for",
    "decide",
    "denial_message",
    "evaluate",
    "install",
    "key_arn",
    "principal_for_access_key",
    "role_policies",
    "role_policies_from_client",
    "role_principal",
    "secret_arn",
    "service_credentials",
    "session_arn",
    "state_machine_role",
    "topic_key_arn",
    "trust_allows",
]
