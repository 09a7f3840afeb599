"""The Choice states of the retrain workflow, run over sample states (table-driven).

Each Choice state runs alone in moto's Step Functions interpreter (the one the execution tests run the
whole workflow in), each state it can choose being a Pass state that names itself.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.template.scripted_sfn import Routed, choice_router

MISSING = object()


@pytest.fixture(scope="module")
def route(retrain_asl) -> Iterator[Callable[[str, Any], Routed]]:
    with choice_router(retrain_asl) as route:
        yield route


def choose(route: Callable[[str, Any], Routed], choice: str, data: Any) -> str:
    """The state the Choice state ``choice`` goes to for ``data``; a failed run fails the test."""
    routed = route(choice, data)
    assert routed.error is None, f"{choice} failed with {routed.error}"
    assert routed.target is not None
    return routed.target


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
def test_choice_routes_sample_states(retrain_asl, route, full_state, choice, changes, expected):
    state = retrain_asl["States"][choice]
    assert state["Type"] == "Choice"
    assert choose(route, choice, with_changes(full_state, **changes)) == expected


def test_the_table_covers_every_choice_and_branch(retrain_asl):
    for name, state in retrain_asl["States"].items():
        if state["Type"] != "Choice":
            continue
        targets = {rule["Next"] for rule in state["Choices"]} | {state["Default"]}
        covered = {expected for choice, _, expected in CASES if choice == name}
        assert covered == targets, f"{name}: branches without a table row: {sorted(targets - covered)}"


def test_sample_function_outputs_route_as_documented(route, load_event):
    """The sample inputs in events/ take the branches their names promise."""
    check_status = load_event("check_status.json")
    after_upload = {**check_status, "duplicate": False}
    assert choose(route, "IsDuplicate", after_upload) == "WaitForJob"
    assert choose(route, "JobState", after_upload) == "WaitForJob"  # the sample poll is still running
    archive = load_event("archive.json")
    assert choose(route, "JobState", archive) == "Archive"
    assert choose(route, "ShouldSwitch", archive) == "SwitchModel"
    failed = load_event("record_failure.json")["state"]
    assert choose(route, "JobState", failed) == "JobFailed"


def test_a_missing_field_is_a_runtime_error_not_a_silent_branch(retrain_asl, route, full_state):
    """Step Functions fails a Choice rule whose ``Variable`` is not in the input (``States.Runtime``);
    moto's interpreter routes it to ``Default`` instead. So what makes AWS fail is asserted on the rules
    themselves: each reads its field directly, with no ``IsPresent`` guard that would branch silently."""
    states = retrain_asl["States"]
    for choice, field in (("JobState", "$.poll.state"), ("IsDuplicate", "$.duplicate")):
        rules = states[choice]["Choices"]
        assert [rule["Variable"] for rule in rules] == [field] * len(rules)
        assert not any("IsPresent" in rule or {"And", "Or", "Not"} & set(rule) for rule in rules)
        routed = route(choice, with_changes(full_state, **{field[2:].replace(".", "__"): MISSING}))
        assert routed.error == "States.Runtime" or routed.target == states[choice]["Default"]
