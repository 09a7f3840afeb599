"""The state machine definitions: every definition file's graph, substitutions and retriers, and what only
the retrain workflow has. The checks both workflows share are in test_workflow_definition.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prediction_one import errors as client_errors
from retrain_pipeline import errors as pipeline_errors

from p1_retrain.local.intrinsics import placeholders
from tests.unit.template.workflows import (
    LAMBDA_TIMEOUT_ERRORS,
    TERMINAL_TYPES,
    is_terminal,
    subclasses_by_name,
    transient_lambda_errors,
)

ROOT = Path(__file__).resolve().parents[3]
SNS_TRANSIENT_ERRORS = {
    "SNS.ThrottledException",
    "SNS.ThrottlingException",
    "SNS.InternalErrorException",
    "SNS.KMSThrottlingException",
}


def transitions(state: dict[str, Any]) -> list[str]:
    targets = [state["Next"]] if "Next" in state else []
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [state["Default"]] if "Default" in state else []
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def reachable(states: dict[str, Any], start: str) -> set[str]:
    seen: set[str] = set()
    pending = [start]
    while pending:
        name = pending.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        pending.extend(transitions(states[name]))
    return seen


def all_definitions(
    state_machine_sources: dict[str, tuple[dict[str, Any], str]], render_asl: Callable[..., dict[str, Any]]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, (_, text) in state_machine_sources.items():
        yield name, render_asl(text)


def test_every_asl_file_belongs_to_a_state_machine(state_machine_sources):
    used = {
        (ROOT / properties["DefinitionUri"]).resolve() for properties, _ in state_machine_sources.values()
    }
    files = {path.resolve() for path in (ROOT / "statemachine").glob("*.asl.json")}
    assert files, "no statemachine/*.asl.json"
    assert files <= used, f"definitions no state machine uses: {sorted(str(p) for p in files - used)}"


def test_placeholders_and_substitutions_match_both_ways(state_machine_sources):
    for name, (properties, text) in state_machine_sources.items():
        used = placeholders(text)
        substitutions = set(properties.get("DefinitionSubstitutions", {}))
        assert used - substitutions == set(), f"{name}: placeholders without a substitution"
        assert substitutions - used == set(), f"{name}: substitutions the definition never uses"


def test_every_state_is_reachable_and_every_target_exists(state_machine_sources, render_asl):
    for name, definition in all_definitions(state_machine_sources, render_asl):
        states = definition["States"]
        assert definition["StartAt"] in states, name
        for state_name, state in states.items():
            missing = [target for target in transitions(state) if target not in states]
            assert not missing, f"{name}.{state_name} goes to undefined states {missing}"
        unreachable = set(states) - reachable(states, definition["StartAt"])
        assert not unreachable, f"{name}: unreachable states {sorted(unreachable)}"


def test_no_dead_ends_and_every_state_can_finish(state_machine_sources, render_asl):
    for name, definition in all_definitions(state_machine_sources, render_asl):
        states = definition["States"]
        for state_name, state in states.items():
            if state["Type"] in TERMINAL_TYPES:
                assert not transitions(state), f"{name}.{state_name}: a terminal state has transitions"
                continue
            if state["Type"] == "Choice":
                assert "Default" in state, f"{name}.{state_name}: a Choice without Default fails at run time"
            else:
                assert ("Next" in state) != (state.get("End") is True), f"{name}.{state_name}: Next xor End"
            finishing = [target for target in reachable(states, state_name) if is_terminal(states[target])]
            assert finishing, f"{name}.{state_name} can never reach an end"


def test_comments_are_present_and_short(state_machine_sources, render_asl):
    for name, definition in all_definitions(state_machine_sources, render_asl):
        assert 0 < len(definition["Comment"]) <= 300, name
        for state_name, state in definition["States"].items():
            comment = state.get("Comment", "")
            assert 0 < len(comment) <= 160, f"{name}.{state_name}: Comment missing or too long"


def test_no_retrier_retries_permanent_errors(state_machine_sources, render_asl):
    allowed = transient_lambda_errors() | SNS_TRANSIENT_ERRORS | LAMBDA_TIMEOUT_ERRORS
    permanent = subclasses_by_name(client_errors, client_errors.PermanentError) | subclasses_by_name(
        pipeline_errors, pipeline_errors.PermanentPipelineError
    )
    assert "ApiKeyInvalid" in permanent and "JobFailed" in permanent
    for name, definition in all_definitions(state_machine_sources, render_asl):
        for state_name, state in definition["States"].items():
            for retrier in state.get("Retry", []):
                names = set(retrier["ErrorEquals"])
                assert not names & {"States.ALL", "States.TaskFailed", "States.Runtime"}, state_name
                assert not names & permanent, f"{name}.{state_name} retries permanent errors"
                assert names <= allowed, f"{name}.{state_name} retries unknown names {names - allowed}"


# The retrain workflow only


def test_the_switch_retrier_waits_for_the_functions_lease(retrain_properties, sam_template):
    lease = sam_template["Globals"]["Function"]["Environment"]["Variables"]["SWITCH_LEASE_SECONDS"]
    value = retrain_properties["DefinitionSubstitutions"]["SwitchLeaseSeconds"]
    assert value == lease == {"Ref": "SwitchLeaseSeconds"}, (
        "the switch retrier must wait for the functions' lease"
    )


def test_the_switch_reads_the_whole_state(retrain_asl):
    switch = retrain_asl["States"]["SwitchModel"]
    assert "Parameters" not in switch and "InputPath" not in switch
    assert switch["ResultPath"] == "$.switch"
