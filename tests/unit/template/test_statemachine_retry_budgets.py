"""Retry budgets against what they wait for, computed from the ASL and the template's own settings.

A retrier that waits out contention must keep retrying at least as long as the contention can last:
- ``IdempotencyAlreadyInProgressError``: the first invocation holds the idempotency record until it ends,
  at most its function's ``Timeout``;
- ``ModelSwitchBusy``: a switch holds the per-model gate until it releases it or its lease
  (``SWITCH_LEASE_SECONDS``) expires, and the lease must outlast a live switch (the function's Timeout).
"""

from __future__ import annotations

from typing import Any

import pytest

LAMBDA_MAX_TIMEOUT = 900


def guaranteed_span(retrier: dict[str, Any]) -> float:
    """The least total wait of a retrier before it gives up (Step Functions' semantics): attempt ``i``
    waits ``min(IntervalSeconds * BackoffRate**i, MaxDelaySeconds)``; with full jitter any wait may be 0."""
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        return 0.0
    interval = retrier.get("IntervalSeconds", 1)
    rate = retrier.get("BackoffRate", 2.0)
    cap = retrier.get("MaxDelaySeconds", float("inf"))
    return sum(min(interval * rate**attempt, cap) for attempt in range(retrier.get("MaxAttempts", 3)))


def retrier_for(state: dict[str, Any], error: str) -> dict[str, Any]:
    """The retrier Step Functions picks for ``error``: the first whose ErrorEquals names it."""
    for retrier in state.get("Retry", []):
        if error in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]:
            return retrier
    raise AssertionError(f"{error} is not retried")


def function_timeout(sam_template: dict[str, Any], function: str) -> int:
    properties = sam_template["Resources"][function]["Properties"]
    timeout = properties.get("Timeout", sam_template["Globals"]["Function"].get("Timeout", 3))
    assert 1 <= int(timeout) <= LAMBDA_MAX_TIMEOUT
    return int(timeout)


def switch_lease(sam_template: dict[str, Any]) -> int:
    """The functions' lease as deployed with the default parameters."""
    lease = sam_template["Globals"]["Function"]["Environment"]["Variables"]["SWITCH_LEASE_SECONDS"]
    if isinstance(lease, dict):
        lease = sam_template["Parameters"][lease["Ref"]]["Default"]
    return int(lease)


def defaults(sam_template: dict[str, Any], properties: dict[str, Any]) -> dict[str, str]:
    """The substitutions as deployed with default parameters (ARNs are irrelevant here)."""
    values = {}
    for name, value in properties["DefinitionSubstitutions"].items():
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in sam_template["Parameters"]:
            values[name] = str(sam_template["Parameters"][value["Ref"]]["Default"])
        elif isinstance(value, str | int):
            values[name] = str(value)
    return values


@pytest.fixture(scope="module")
def deployed_definitions(sam_template, state_machine_sources, render_asl) -> dict[str, dict[str, Any]]:
    return {
        name: render_asl(text, defaults(sam_template, properties))["States"]
        for name, (properties, text) in state_machine_sources.items()
    }


@pytest.mark.parametrize(
    ("machine", "step", "function"),
    [
        ("RetrainStateMachine", "Upload", "UploadFunction"),
        ("TrainWatchStateMachine", "StartWatch", "StartWatchFunction"),
    ],
)
def test_a_duplicate_waits_as_long_as_the_first_invocation_can_run(
    deployed_definitions, sam_template, machine, step, function
):
    retrier = retrier_for(deployed_definitions[machine][step], "IdempotencyAlreadyInProgressError")
    assert guaranteed_span(retrier) >= function_timeout(sam_template, function)
    # Whatever Timeout the function is given, up to the Lambda limit.
    assert guaranteed_span(retrier) >= LAMBDA_MAX_TIMEOUT


def test_a_busy_switch_waits_out_the_lease(deployed_definitions, sam_template):
    retrier = retrier_for(deployed_definitions["RetrainStateMachine"]["SwitchModel"], "ModelSwitchBusy")
    lease = switch_lease(sam_template)
    assert guaranteed_span(retrier) >= lease
    assert retrier["MaxDelaySeconds"] == lease  # no single wait longer than the lease itself


def test_the_lease_outlasts_a_live_switch(sam_template):
    """A switch still running (up to its Timeout) never loses its gate to another; a switch killed at its
    Timeout (after update_model, before release) frees the gate when the lease ends."""
    assert switch_lease(sam_template) >= function_timeout(sam_template, "SwitchModelFunction")


def test_contention_is_not_left_to_the_generic_retrier(deployed_definitions):
    for states in deployed_definitions.values():
        for name, state in states.items():
            for retrier in state.get("Retry", []):
                names = set(retrier["ErrorEquals"])
                if names & {"IdempotencyAlreadyInProgressError", "ModelSwitchBusy"}:
                    assert len(names) == 1, f"{name}: contention shares a retrier"
                    assert retrier.get("JitterStrategy", "NONE") == "NONE", name


def test_the_span_arithmetic():
    assert guaranteed_span({"IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}) == 2 + 4 + 8
    assert guaranteed_span({"IntervalSeconds": 2, "MaxAttempts": 3, "MaxDelaySeconds": 5}) == 2 + 4 + 5
    assert guaranteed_span({"IntervalSeconds": 2, "MaxAttempts": 9, "JitterStrategy": "FULL"}) == 0


def test_every_api_function_holds_one_whole_attempt_with_the_default_timeouts(sam_template):
    """The client stops retrying when the invocation cannot hold another attempt (prediction_one.deadline);
    the first attempt must still fit whole with the default connect and read timeouts."""
    from prediction_one.deadline import SAFETY_SECONDS

    parameters = sam_template["Parameters"]
    attempt = (
        parameters["ApiConnectTimeoutSeconds"]["Default"] + parameters["ApiReadTimeoutSeconds"]["Default"]
    )
    for name, resource in sam_template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and name != "RecordFailureFunction":
            assert function_timeout(sam_template, name) >= SAFETY_SECONDS + attempt, name
