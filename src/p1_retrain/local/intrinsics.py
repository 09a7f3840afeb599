"""Evaluate the few CloudFormation intrinsics that may name a resource before anything is deployed."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from p1_retrain.local.errors import LocalStackError

# ``${name}`` in an ``Fn::Sub`` string or a state machine definition; ``${!name}`` stays literal.
PLACEHOLDER = re.compile(r"\$\{([^}!]+)\}")


def placeholders(text: str) -> set[str]:
    """The names ``text`` has placeholders for."""
    return set(PLACEHOLDER.findall(text))


def substitute(
    text: str, values: Mapping[str, Any] | Callable[[str], Any], *, keep_unknown: bool = False
) -> str:
    """Replace every ``${name}`` of ``text`` by ``str`` of its value, as ``Fn::Sub`` and Step Functions'
    ``DefinitionSubstitutions`` do. ``values`` is a mapping or a function of the name; a name the mapping
    lacks is a ``KeyError`` (``keep_unknown``: left as it is)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if callable(values):
            return str(values(name))
        if name in values:
            return str(values[name])
        if keep_unknown:
            return match.group(0)
        raise KeyError(f"no substitution for ${{{name}}}")

    return PLACEHOLDER.sub(replace, text)


def evaluate(node: Any, refs: dict[str, Any]) -> Any:
    """Evaluate ``Ref``, ``Fn::Sub``, ``Fn::Join`` and ``Fn::Select`` against ``refs`` (parameters, pseudo
    parameters, already known resources). Anything else is refused with its name."""
    if isinstance(node, list):
        return [evaluate(item, refs) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((name, body),) = node.items()
        if name == "Ref":
            return _lookup(body, refs)
        if name == "Fn::Sub":
            return _sub(body, refs)
        if name == "Fn::Join":
            separator, items = body
            return str(separator).join(str(item) for item in evaluate(items, refs))
        if name == "Fn::Select":
            index, items = body
            return evaluate(items, refs)[int(evaluate(index, refs))]
        if name.startswith("Fn::") or name == "Condition":
            raise LocalStackError(f"cannot evaluate {name} before the stack is deployed")
    return {key: evaluate(value, refs) for key, value in node.items()}


def _lookup(name: str, refs: dict[str, Any]) -> Any:
    if name not in refs:
        raise LocalStackError(f"cannot evaluate Ref {name} before the stack is deployed")
    return refs[name]


def _sub(body: Any, refs: dict[str, Any]) -> str:
    if isinstance(body, list):
        text, variables = body[0], {key: evaluate(value, refs) for key, value in body[1].items()}
    else:
        text, variables = body, {}
    scope = {**refs, **variables}
    return substitute(text, lambda name: _lookup(name, scope))
