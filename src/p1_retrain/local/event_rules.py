"""EventBridge event patterns, checked and matched the way EventBridge itself does.

EventBridge is built on the open-source event-ruler matcher; moto's own evaluator is more lenient (it
reads a field path named both beside and inside ``$or`` as an AND, where EventBridge rejects the pattern
or lets the later condition replace the earlier one). The local stack and the template tests use this
module so that a pattern that works here also works on AWS.

- :func:`validate_pattern` compiles a pattern the way event-ruler's ``JsonRuleCompiler`` does: ``$or`` is
  expanded into its branches (each branch inherits the conditions beside it), and a field path that a
  branch would name twice is rejected ("Path `detail.object.key` cannot be allowed multiple times"). Only
  the comparison operators EventBridge documents are accepted: exact values, ``prefix`` / ``suffix`` (also
  with ``equals-ignore-case``), ``equals-ignore-case``, ``wildcard``, ``anything-but`` (a value, a list, or
  ``prefix`` / ``suffix`` / ``equals-ignore-case`` / ``wildcard`` of a string or a list), ``numeric``,
  ``exists``, ``cidr`` and ``$or``.
- :func:`matches` evaluates a valid pattern against an event: a pattern matches when one of its branches
  does; a branch matches when every field it names matches; a field matches when one of its conditions
  matches one of the event's values there (an array matches when any element does, and fields inside
  objects of one array must come from the same element). ``anything-but`` and every other operator except
  ``exists: false`` need the field to be present; ``exists`` looks at leaf values only.
- Numeric matching works on JSON numbers within EventBridge's documented range, -1.0e9 to +1.0e9: a
  pattern bound outside it is rejected, and an event value outside it never matches ``numeric`` (so a
  pattern must not rely on ``numeric`` for S3 object sizes, which exceed it).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

OR = "$or"
NUMERIC_LIMIT = 1.0e9  # EventBridge documents numeric matching for -1.0e9 .. +1.0e9
NUMERIC_OPERATORS = ("=", "<", "<=", ">", ">=")
MATCH_OPERATORS = (
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
)
# event-ruler refuses these as field names directly inside a $or branch (they are operators, or reserved).
RESERVED_IN_OR = frozenset(
    {
        *MATCH_OPERATORS,
        "exactly",
        *NUMERIC_OPERATORS,
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    }
)

Path = tuple[str, ...]
Branch = dict[Path, list[Any]]


class InvalidEventPattern(ValueError):
    """The pattern would be rejected by EventBridge (``InvalidEventPatternException``)."""

    def __init__(self, message: str, path: Path = ()) -> None:
        self.path = dotted(path) if path else None
        super().__init__(f"{message} (at `{self.path}`)" if path else message)


def dotted(path: Path) -> str:
    return ".".join(path)


# ---------------------------------------------------------------------------------------------------
# Compiling: a pattern becomes its branches, each a map of field path -> conditions
# ---------------------------------------------------------------------------------------------------
def compile_pattern(pattern: Any) -> list[Branch]:
    """The pattern's branches (``$or`` expanded), as event-ruler compiles them; raises InvalidEventPattern."""
    if isinstance(pattern, str | bytes):
        try:
            pattern = json.loads(pattern)
        except json.JSONDecodeError as error:
            raise InvalidEventPattern(f"the pattern is not valid JSON: {error}") from None
    if not isinstance(pattern, Mapping):
        raise InvalidEventPattern("the pattern is not a JSON object")
    branches: list[Branch] = []
    _compile_object(pattern, (), branches, inside_or=False)
    return branches


def validate_pattern(pattern: Any) -> None:
    """Raise InvalidEventPattern, naming the path, when EventBridge would reject ``pattern``."""
    compile_pattern(pattern)


def _compile_object(node: Mapping[str, Any], path: Path, branches: list[Branch], *, inside_or: bool) -> None:
    if not node:
        raise InvalidEventPattern("empty objects are not allowed", path)
    for name, value in node.items():
        if not isinstance(name, str):
            raise InvalidEventPattern(f"field name {name!r} is not a string", path)
        if name == OR:
            _compile_or(value, path, branches)
            continue
        if inside_or and name in RESERVED_IN_OR:
            raise InvalidEventPattern(f"`{name}` is an operator and cannot be a field name inside $or", path)
        child = (*path, name)
        if isinstance(value, Mapping):
            _compile_object(value, child, branches, inside_or=inside_or)
        elif isinstance(value, list):
            conditions = [_check_condition(condition, child) for condition in value]
            if not conditions:
                raise InvalidEventPattern("empty arrays are not allowed", child)
            if not branches:
                branches.append({})
            for branch in branches:
                if child in branch:
                    raise InvalidEventPattern(f"Path `{dotted(child)}` cannot be allowed multiple times")
                branch[child] = conditions
        else:
            raise InvalidEventPattern(f'"{name}" must be an object or an array', path)


def _compile_or(value: Any, path: Path, branches: list[Branch]) -> None:
    where = (*path, OR)
    if not isinstance(value, list):
        raise InvalidEventPattern("$or must be followed by an array of objects", where)
    if len(value) < 2:
        raise InvalidEventPattern("$or needs at least 2 objects", where)
    before = [dict(branch) for branch in branches] or [{}]
    branches.clear()
    for member in value:
        if not isinstance(member, Mapping):
            raise InvalidEventPattern("only JSON objects are allowed in a $or array", where)
        forked = [dict(branch) for branch in before]
        _compile_object(member, path, forked, inside_or=True)
        branches.extend(forked)


def _check_condition(condition: Any, path: Path) -> Any:
    """Check one element of a field's condition list; return it unchanged."""
    if condition is None or isinstance(condition, str | bool | int | float):
        if isinstance(condition, float) and not math.isfinite(condition):
            raise InvalidEventPattern("numbers must be finite", path)
        return condition
    if not isinstance(condition, Mapping):
        raise InvalidEventPattern(
            "a match value must be a string, number, true, false, null or an object", path
        )
    if len(condition) != 1:
        raise InvalidEventPattern("a match expression has exactly one operator", path)
    ((operator, argument),) = condition.items()
    if operator in ("prefix", "suffix"):
        _string_or_ignore_case(argument, operator, path)
    elif operator == "equals-ignore-case":
        _string(argument, operator, path)
    elif operator == "wildcard":
        _wildcard(argument, path)
    elif operator == "anything-but":
        _anything_but(argument, path)
    elif operator == "numeric":
        _numeric_bounds(argument, path)
    elif operator == "exists":
        if not isinstance(argument, bool):
            raise InvalidEventPattern("exists must be true or false", path)
    elif operator == "cidr":
        _string(argument, operator, path)
        try:
            ipaddress.ip_network(argument, strict=False)
        except ValueError:
            raise InvalidEventPattern(f"cidr {argument!r} is not an IPv4 or IPv6 network", path) from None
    else:
        raise InvalidEventPattern(f"unrecognized match type `{operator}`", path)
    return condition


def _string(argument: Any, operator: str, path: Path) -> str:
    if not isinstance(argument, str):
        raise InvalidEventPattern(f"{operator} needs a string", path)
    return argument


def _string_or_ignore_case(argument: Any, operator: str, path: Path) -> None:
    if isinstance(argument, Mapping):
        if set(argument) != {"equals-ignore-case"}:
            raise InvalidEventPattern(f"{operator} takes a string or {{equals-ignore-case: string}}", path)
        _string(argument["equals-ignore-case"], operator, path)
    else:
        _string(argument, operator, path)


def _wildcard(argument: Any, path: Path) -> None:
    text = _string(argument, "wildcard", path)
    if "**" in text.replace("\\\\", "").replace("\\*", ""):
        raise InvalidEventPattern(f"wildcard {text!r} has consecutive wildcard characters", path)
    index = 0
    while index < len(text):
        if text[index] == "\\":
            if index + 1 >= len(text) or text[index + 1] not in "*\\":
                raise InvalidEventPattern(f"wildcard {text!r}: a backslash escapes only * or \\", path)
            index += 2
        else:
            index += 1


def _anything_but(argument: Any, path: Path) -> None:
    if isinstance(argument, Mapping):
        if len(argument) != 1:
            raise InvalidEventPattern("anything-but takes one operator", path)
        ((operator, value),) = argument.items()
        if operator not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise InvalidEventPattern(f"unsupported anything-but pattern `{operator}`", path)
        values = value if isinstance(value, list) else [value]
        if not values:
            raise InvalidEventPattern(f"anything-but {operator} needs a string or a list of strings", path)
        for item in values:
            _string(item, f"anything-but {operator}", path)
            if operator in ("prefix", "suffix") and not item:
                raise InvalidEventPattern(f"anything-but {operator} cannot be empty", path)
            if operator == "wildcard":
                _wildcard(item, path)
        return
    values = argument if isinstance(argument, list) else [argument]
    kinds = {_kind(item) for item in values}
    if not values or kinds - {"string", "number"} or len(kinds) != 1:
        raise InvalidEventPattern(
            "anything-but needs a string, a number, or a list of only strings or only numbers", path
        )
    if kinds == {"number"}:
        for item in values:
            _in_numeric_range(item, path)


def _kind(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "literal"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "other"


def _in_numeric_range(value: Any, path: Path) -> float:
    if _kind(value) != "number":
        raise InvalidEventPattern(f"numeric value {value!r} is not a number", path)
    if not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:
        raise InvalidEventPattern(
            f"numeric value {value!r} is outside EventBridge's range -1.0e9 .. +1.0e9", path
        )
    return float(value)


def _numeric_bounds(argument: Any, path: Path) -> list[tuple[str, float]]:
    """``["=", n]``, ``[">"|">=", n]``, ``["<"|"<=", n]`` or ``[">"|">=", low, "<"|"<=", high]``."""
    if not isinstance(argument, list) or len(argument) not in (2, 4):
        raise InvalidEventPattern("numeric takes [operator, number] or [>/>=, low, </<=, high]", path)
    bounds = [(argument[i], _in_numeric_range(argument[i + 1], path)) for i in range(0, len(argument), 2)]
    for operator, _ in bounds:
        if operator not in NUMERIC_OPERATORS:
            raise InvalidEventPattern(f"unrecognized numeric operator {operator!r}", path)
    if len(bounds) == 2:
        (low_op, low), (high_op, high) = bounds
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            raise InvalidEventPattern("a numeric range is [>/>=, low, </<=, high]", path)
        if low >= high:
            raise InvalidEventPattern(f"numeric range {low} .. {high} is empty", path)
    return bounds


# ---------------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------------
_MISSING = object()


def matches(pattern: Any, event: Mapping[str, Any]) -> bool:
    """Whether EventBridge delivers ``event`` to a rule with ``pattern`` (InvalidEventPattern if invalid)."""
    return any(_branch_matches(branch, event) for branch in compile_pattern(pattern))


def _branch_matches(branch: Branch, event: Mapping[str, Any]) -> bool:
    # Nest the branch again so that fields inside objects of one array are matched within one element.
    tree: dict[str, Any] = {}
    for path, conditions in branch.items():
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = conditions
    return _tree_matches(tree, event)


def _tree_matches(tree: Mapping[str, Any], node: Any) -> bool:
    for name, sub in tree.items():
        value = node.get(name, _MISSING) if isinstance(node, Mapping) else _MISSING
        if isinstance(sub, Mapping):
            candidates = [item for item in _crushed(value) if isinstance(item, Mapping)]
            # An absent object still lets `exists: false` leaves below it match.
            if not any(_tree_matches(sub, item) for item in candidates) and (
                candidates or not _only_absence(sub)
            ):
                return False
        elif not _field_matches(sub, [leaf for leaf in _crushed(value) if not isinstance(leaf, Mapping)]):
            return False
    return True


def _crushed(value: Any) -> Iterator[Any]:
    """The event's values at one field: arrays (also nested) are crushed into their elements."""
    if value is _MISSING:
        return
    if isinstance(value, list):
        for item in value:
            yield from _crushed(item)
    else:
        yield value


def _only_absence(tree: Mapping[str, Any]) -> bool:
    """Every leaf below lists ``exists: false`` (so it matches where the whole object is absent)."""
    for sub in tree.values():
        if isinstance(sub, Mapping):
            if not _only_absence(sub):
                return False
        elif {"exists": False} not in sub:
            return False
    return True


def _field_matches(conditions: Sequence[Any], values: list[Any]) -> bool:
    for condition in conditions:
        if isinstance(condition, Mapping) and "exists" in condition:
            if bool(values) == condition["exists"]:
                return True
        elif any(_value_matches(condition, value) for value in values):
            return True
    return False


def _number(value: Any) -> float | None:
    """The event value as a number EventBridge can compare, or None."""
    if _kind(value) != "number" or not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:
        return None
    return float(value)


def _value_matches(condition: Any, value: Any) -> bool:
    if not isinstance(condition, Mapping):
        return _equals(condition, value)
    ((operator, argument),) = condition.items()
    if operator == "anything-but":
        return not _excluded(argument, value)
    if operator == "numeric":
        number = _number(value)
        bounds = zip(argument[::2], argument[1::2], strict=True)
        return number is not None and all(_compare(number, op, float(bound)) for op, bound in bounds)
    if operator == "cidr":
        return _ip(value) is not None and _ip(value) in ipaddress.ip_network(argument, strict=False)
    if not isinstance(value, str):
        return False
    if operator == "equals-ignore-case":
        return value.lower() == argument.lower()
    if operator == "wildcard":
        return _wildcard_regex(argument).fullmatch(value) is not None
    ignore_case = isinstance(argument, Mapping)
    text = argument["equals-ignore-case"] if ignore_case else argument
    subject, text = (value.lower(), text.lower()) if ignore_case else (value, text)
    return subject.startswith(text) if operator == "prefix" else subject.endswith(text)


def _equals(expected: Any, value: Any) -> bool:
    kind = _kind(expected)
    if kind != _kind(value):
        return False
    if kind == "number":
        return expected == value
    if kind == "literal":
        return expected is value
    if expected == value:
        return True
    expected_ip, value_ip = _ip(expected), _ip(value)  # EventBridge compares IP address strings as addresses
    return expected_ip is not None and expected_ip == value_ip


def _excluded(argument: Any, value: Any) -> bool:
    """Whether an ``anything-but`` argument excludes ``value`` (a present value of another type is not)."""
    if isinstance(argument, Mapping):
        ((operator, listed),) = argument.items()
        if not isinstance(value, str):
            return False
        items = listed if isinstance(listed, list) else [listed]
        if operator == "prefix":
            return any(value.startswith(item) for item in items)
        if operator == "suffix":
            return any(value.endswith(item) for item in items)
        if operator == "equals-ignore-case":
            return any(value.lower() == item.lower() for item in items)
        return any(_wildcard_regex(item).fullmatch(value) is not None for item in items)
    items = argument if isinstance(argument, list) else [argument]
    return any(_equals(item, value) for item in items)


def _compare(number: float, operator: str, bound: float) -> bool:
    return {
        "=": number == bound,
        "<": number < bound,
        "<=": number <= bound,
        ">": number > bound,
        ">=": number >= bound,
    }[operator]


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@lru_cache(maxsize=256)
def _wildcard_regex(text: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            parts.append(re.escape(text[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)
