"""The Choice states of the retrain workflow, evaluated over sample states (table-driven).

A small evaluator implements the Choice rule operators the definitions use; an operator it does not know
fails the test, so a new kind of rule cannot slip in unchecked.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable
from typing import Any

import pytest

MISSING = object()
COMPARISONS: dict[str, tuple[type | tuple[type, ...], Callable[[Any, Any], bool]]] = {
    "StringEquals": (str, operator.eq),
    "StringLessThan": (str, operator.lt),
    "StringGreaterThan": (str, operator.gt),
    "StringLessThanEquals": (str, operator.le),
    "StringGreaterThanEquals": (str, operator.ge),
    "NumericEquals": ((int, float), operator.eq),
    "NumericLessThan": ((int, float), operator.lt),
    "NumericGreaterThan": ((int, float), operator.gt),
    "NumericLessThanEquals": ((int, float), operator.le),
    "NumericGreaterThanEquals": ((int, float), operator.ge),
    "BooleanEquals": (bool, operator.eq),
}
TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda value: value is None,
    "IsString": lambda value: isinstance(value, str),
    "IsBoolean": lambda value: isinstance(value, bool),
    "IsNumeric": lambda value: isinstance(value, (int, float)) and not isinstance(value, bool),
}


class ChoiceRuntimeError(Exception):
    """What Step Functions raises as States.Runtime when a rule reads a path the input lacks."""


def read_path(data: Any, path: str) -> Any:
    """Resolve a simple reference path (``$``, ``$.a.b``)."""
    if path == "$":
        return data
    assert path.startswith("$."), f"unsupported path {path!r}"
    value = data
    for part in path[2:].split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def evaluate(rule: dict[str, Any], data: Any) -> bool:
    if "And" in rule:
        return all(evaluate(item, data) for item in rule["And"])
    if "Or" in rule:
        return any(evaluate(item, data) for item in rule["Or"])
    if "Not" in rule:
        return not evaluate(rule["Not"], data)
    value = read_path(data, rule["Variable"])
    operators = set(rule) - {"Variable", "Next", "Comment"}
    assert len(operators) == 1, f"one operator per rule, got {sorted(operators)}"
    (name,) = operators
    expected = rule[name]
    if name == "IsPresent":
        return (value is not MISSING) == expected
    if value is MISSING:
        raise ChoiceRuntimeError(f"Invalid path {rule['Variable']}: the input has no such field")
    if name in TYPE_TESTS:
        return TYPE_TESTS[name](value) == expected
    if name in COMPARISONS:
        kind, compare = COMPARISONS[name]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            return False
        return compare(value, expected)
    raise NotImplementedError(f"the evaluator does not know the Choice operator {name}")


def choose(state: dict[str, Any], data: Any) -> str:
    for rule in state["Choices"]:
        if evaluate(rule, data):
            return rule["Next"]
    return state["Default"]


def with_changes(base: dict[str, Any], **paths: Any) -> dict[str, Any]:
    """A copy of ``base`` with dotted paths (``poll__state``) set; ``MISSING`` removes the field."""
    data = copy.deepcopy(base)
    for dotted, value in paths.items():
        *parents, leaf = dotted.split("__")
        node = data
        for part in parents:
            node = node[part]
        if value is MISSING:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


@pytest.fixture(scope="module")
def full_state(load_event) -> dict[str, Any]:
    """The state after Archive (what SwitchModel receives), from events/switch_model.json."""
    return load_event("switch_model.json")


CASES = [
    ("IsDuplicate", {"duplicate": True}, "DuplicateEvent"),
    ("IsDuplicate", {"duplicate": False}, "WaitForJob"),
    ("JobState", {"poll__state": "running"}, "WaitForJob"),
    ("JobState", {"poll__state": "finished"}, "Archive"),
    ("JobState", {"poll__state": "failed"}, "JobFailed"),
    ("JobState", {"poll__state": "deadline"}, "JobDeadline"),
    ("JobState", {"poll__state": "queued"}, "WaitForJob"),
    ("JobState", {"poll__state": "Finished"}, "WaitForJob"),
    ("ShouldSwitch", {"job__auto_switch": True}, "SwitchModel"),
    ("ShouldSwitch", {"job__auto_switch": False}, "NotifySuccess"),
    ("ShouldSwitch", {"job__auto_switch": "true"}, "NotifySuccess"),
]


@pytest.mark.parametrize(("choice", "changes", "expected"), CASES)
def test_choice_routes_sample_states(retrain_asl, full_state, choice, changes, expected):
    state = retrain_asl["States"][choice]
    assert state["Type"] == "Choice"
    assert choose(state, with_changes(full_state, **changes)) == expected


def test_the_table_covers_every_choice_and_branch(retrain_asl):
    for name, state in retrain_asl["States"].items():
        if state["Type"] != "Choice":
            continue
        targets = {rule["Next"] for rule in state["Choices"]} | {state["Default"]}
        covered = {expected for choice, _, expected in CASES if choice == name}
        assert covered == targets, f"{name}: branches without a table row: {sorted(targets - covered)}"


def test_sample_function_outputs_route_as_documented(retrain_asl, load_event):
    """The sample inputs in events/ take the branches their names promise."""
    states = retrain_asl["States"]
    check_status = load_event("check_status.json")
    after_upload = {**check_status, "duplicate": False}
    assert choose(states["IsDuplicate"], after_upload) == "WaitForJob"
    assert choose(states["JobState"], after_upload) == "WaitForJob"  # the sample poll is still running
    archive = load_event("archive.json")
    assert choose(states["JobState"], archive) == "Archive"
    assert choose(states["ShouldSwitch"], archive) == "SwitchModel"
    failed = load_event("record_failure.json")["state"]
    assert choose(states["JobState"], failed) == "JobFailed"


def test_a_missing_field_is_a_runtime_error_not_a_silent_branch(retrain_asl, full_state):
    states = retrain_asl["States"]
    with pytest.raises(ChoiceRuntimeError):
        choose(states["JobState"], with_changes(full_state, poll__state=MISSING))
    with pytest.raises(ChoiceRuntimeError):
        choose(states["IsDuplicate"], with_changes(full_state, duplicate=MISSING))


def test_the_evaluator_knows_the_operators_it_claims():
    data = {"a": {"n": 3, "s": "x", "b": True, "z": None}}
    assert evaluate({"Variable": "$.a.n", "NumericGreaterThan": 2}, data)
    assert not evaluate({"Variable": "$.a.n", "NumericLessThan": 2}, data)
    assert evaluate({"Variable": "$.a.s", "StringEquals": "x"}, data)
    assert not evaluate({"Variable": "$.a.b", "StringEquals": "True"}, data)
    assert evaluate({"Variable": "$.a.z", "IsNull": True}, data)
    assert evaluate({"Variable": "$.a.q", "IsPresent": False}, data)
    assert evaluate({"Not": {"Variable": "$.a.b", "BooleanEquals": False}}, data)
    assert evaluate(
        {"And": [{"Variable": "$.a.n", "IsNumeric": True}, {"Variable": "$.a.n", "NumericEquals": 3}]}, data
    )
    assert evaluate(
        {"Or": [{"Variable": "$.a.s", "StringEquals": "y"}, {"Variable": "$.a.b", "IsBoolean": True}]}, data
    )
    with pytest.raises(NotImplementedError):
        evaluate({"Variable": "$.a.s", "StringMatches": "x*"}, data)
