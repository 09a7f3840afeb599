"""AWS's evaluation logic for identity-based policies, for one request: (action, resource, context).

An explicit ``Deny`` in any statement wins; otherwise an ``Allow`` in any statement allows; otherwise the
request is implicitly denied. A statement applies when its ``Action``/``NotAction`` matches the action
(case-insensitive, ``*`` and ``?`` wildcards), its ``Resource``/``NotResource`` matches the resource ARN
(case-sensitive, each of the six ARN parts matched on its own, as AWS does) and every condition holds.

moto's own ``IAMPolicyStatement`` is not used for the decision: in moto 5.2.5 it evaluates only
``StringEquals`` conditions and lets a statement with any other condition apply unconditionally, treats a
statement with ``NotResource`` (and no ``Resource``) as matching every resource, and turns the ``.`` of an
ARN into a regex wildcard. Each of those would allow what AWS denies.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from operator import eq, ge, gt, le, lt
from typing import Any

ContextValue = str | Sequence[str]


class UnsupportedCondition(ValueError):
    """A policy uses a condition operator this evaluator does not implement (refused, never guessed)."""


class Effect(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"


@dataclass(frozen=True)
class Decision:
    """The outcome for one request, with the statement that decided it (None for an implicit deny)."""

    effect: Effect
    action: str
    resource: str
    statement: Mapping[str, Any] | None = None
    policy_name: str | None = None

    @property
    def allowed(self) -> bool:
        return self.effect is Effect.ALLOW


@dataclass(frozen=True)
class PolicyDocument:
    """A policy document and where it came from (an inline policy name or a managed policy ARN)."""

    name: str
    document: Mapping[str, Any]

    @classmethod
    def parse(cls, name: str, document: str | Mapping[str, Any]) -> PolicyDocument:
        if isinstance(document, str):
            document = json.loads(document)
        if not isinstance(document, Mapping) or "Statement" not in document:
            raise ValueError(f"policy {name} has no Statement")
        return cls(name, document)

    def statements(self) -> list[Mapping[str, Any]]:
        statements = self.document["Statement"]
        return list(statements) if isinstance(statements, list) else [statements]


def evaluate(
    policies: Iterable[PolicyDocument],
    action: str,
    resource: str,
    context: Mapping[str, ContextValue] | None = None,
) -> Decision:
    """Decide ``action`` on ``resource`` for a principal holding ``policies`` (identity-based)."""
    keys = _normalise_context(context)
    allowed: tuple[Mapping[str, Any], str] | None = None
    for policy in policies:
        for statement in policy.statements():
            if not statement_applies(statement, action, resource, keys):
                continue
            effect = statement.get("Effect")
            if effect == "Deny":
                return Decision(Effect.EXPLICIT_DENY, action, resource, statement, policy.name)
            if effect == "Allow" and allowed is None:
                allowed = (statement, policy.name)
    if allowed is not None:
        return Decision(Effect.ALLOW, action, resource, allowed[0], allowed[1])
    return Decision(Effect.IMPLICIT_DENY, action, resource)


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, list[str]]
) -> bool:
    """Whether one statement concerns this request (its Effect aside)."""
    if "Action" in statement:
        if not any(action_matches(pattern, action) for pattern in _listify(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(pattern, action) for pattern in _listify(statement["NotAction"])):
            return False
    else:
        return False
    if "Resource" in statement:
        patterns = [_substitute(pattern, context) for pattern in _listify(statement["Resource"])]
        if not any(resource_matches(pattern, resource) for pattern in patterns):
            return False
    elif "NotResource" in statement:
        patterns = [_substitute(pattern, context) for pattern in _listify(statement["NotResource"])]
        if any(resource_matches(pattern, resource) for pattern in patterns):
            return False
    else:
        return False  # an identity policy statement without Resource or NotResource is invalid
    return conditions_hold(statement.get("Condition") or {}, context)


# -- matching --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's ``*`` (any run of characters) and ``?`` (one character); everything else literal."""
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    """Actions are case-insensitive (``s3:getobject`` is ``s3:GetObject``)."""
    return wildcard_matches(str(pattern), action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    """``*`` matches everything; an ARN pattern matches part by part (partition, service, region, account,
    resource), so a wildcard in one part never spills into another."""
    pattern = str(pattern)
    if pattern == "*":
        return True
    if not pattern.startswith("arn:"):
        return wildcard_matches(pattern, resource)
    pattern_parts = pattern.split(":", 5)
    resource_parts = resource.split(":", 5)
    if len(pattern_parts) != 6 or len(resource_parts) != 6:
        return False  # not an ARN pattern (IAM refuses such a Resource): it matches nothing
    return all(wildcard_matches(p, r) for p, r in zip(pattern_parts, resource_parts, strict=True))


_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_SPECIAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}


def _substitute(pattern: Any, context: Mapping[str, list[str]]) -> str:
    """Policy variables (``${aws:username}``) from the request context; ``${*}``, ``${?}``, ``${$}``."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _SPECIAL_VARIABLES:
            return _SPECIAL_VARIABLES[name]
        values = context.get(name.lower())
        return values[0] if values and len(values) == 1 else match.group(0)

    return _VARIABLE.sub(replace, str(pattern))


# -- conditions --------------------------------------------------------------------------------------------


def _normalise_context(context: Mapping[str, ContextValue] | None) -> dict[str, list[str]]:
    """Condition keys are case-insensitive; every value becomes a list of strings."""
    keys: dict[str, list[str]] = {}
    for name, value in (context or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            values = ["true" if value else "false"]
        elif isinstance(value, (str, int, float)):
            values = [str(value)]
        else:
            values = [str(item).lower() if isinstance(item, bool) else str(item) for item in value]
        keys[name.lower()] = values
    return keys


def _listify(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _string_eq(expected: str, actual: str) -> bool:
    return expected == actual


def _string_eq_ignore_case(expected: str, actual: str) -> bool:
    return expected.lower() == actual.lower()


def _string_like(expected: str, actual: str) -> bool:
    return wildcard_matches(expected, actual)


def _arn_like(expected: str, actual: str) -> bool:
    return resource_matches(expected, actual) if expected != "*" else True


def _numeric(compare: Any) -> Any:
    def check(expected: str, actual: str) -> bool:
        try:
            return bool(compare(float(actual), float(expected)))
        except ValueError:
            return False

    return check


def _instant(value: str) -> datetime | None:
    """A condition date: ISO 8601 (``2026-01-01``, ``2026-01-01T00:00:00Z``) or epoch seconds."""
    try:
        if re.fullmatch(r"\d+(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date(compare: Any) -> Any:
    def check(expected: str, actual: str) -> bool:
        left, right = _instant(actual), _instant(expected)
        return left is not None and right is not None and bool(compare(left, right))

    return check


def _ip_in(expected: str, actual: str) -> bool:
    try:
        return ipaddress.ip_address(actual) in ipaddress.ip_network(expected, strict=False)
    except ValueError:
        return False


# The six comparisons AWS defines alike for numbers and dates (``Numeric<name>``, ``Date<name>``):
# name -> (actual compared to expected, negated).
_COMPARISONS: dict[str, tuple[Callable[[Any, Any], bool], bool]] = {
    "Equals": (eq, False),
    "NotEquals": (eq, True),
    "LessThan": (lt, False),
    "LessThanEquals": (le, False),
    "GreaterThan": (gt, False),
    "GreaterThanEquals": (ge, False),
}

# operator -> (value test, negated). A negated operator holds when no value matches (and when the key is
# absent), as AWS documents for StringNotEquals, ArnNotLike, NotIpAddress and the like.
_OPERATORS: dict[str, tuple[Any, bool]] = {
    "StringEquals": (_string_eq, False),
    "StringNotEquals": (_string_eq, True),
    "StringEqualsIgnoreCase": (_string_eq_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_eq_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_string_eq_ignore_case, False),
    **{f"Numeric{name}": (_numeric(compare), negated) for name, (compare, negated) in _COMPARISONS.items()},
    **{f"Date{name}": (_date(compare), negated) for name, (compare, negated) in _COMPARISONS.items()},
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
}


def conditions_hold(condition: Mapping[str, Any], context: Mapping[str, list[str]]) -> bool:
    """Every operator block, and every key in it, must hold; a key's listed values are alternatives."""
    for operator, block in condition.items():
        if not isinstance(block, Mapping):
            raise UnsupportedCondition(f"condition {operator} must map keys to values")
        for key, expected in block.items():
            if not _condition_holds(operator, str(key), [str(v) for v in _listify(expected)], context):
                return False
    return True


def _condition_holds(operator: str, key: str, expected: list[str], context: Mapping[str, list[str]]) -> bool:
    actual = context.get(key.lower())
    if operator == "Null":
        # "true": the key must be absent; "false": it must be present.
        return any((value.lower() == "true") == (actual is None) for value in expected)
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise UnsupportedCondition(f"condition operator {operator} is not supported")
    test, negated = _OPERATORS[base]
    if actual is None:
        if qualifier == "ForAllValues":
            return True
        return if_exists or negated
    if base == "Bool":
        expected = [value.lower() for value in expected]

    def matches(value: str) -> bool:
        return any(test(item, value) for item in expected)

    if qualifier == "ForAllValues":
        return all(matches(value) != negated for value in actual)
    if qualifier == "ForAnyValue":
        return any(matches(value) != negated for value in actual)
    if qualifier:
        raise UnsupportedCondition(f"condition qualifier {qualifier} is not supported")
    if negated:
        return not any(matches(value) for value in actual)
    return any(matches(value) for value in actual)
