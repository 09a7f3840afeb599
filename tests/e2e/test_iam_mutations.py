"""Mutation test of the template's IAM: remove any one statement the pipeline needs, deploy the mutant on the
strict local stack, drop the file that makes the needing call, and find an AccessDenied naming the action.

The statements come from ``iam_gate.template_policies.needed_statements`` (the statements without which one
of the pipeline's recorded calls is denied); each is one case here. The rules' generated roles are not SAM
``Policies`` and cannot be mutated through the template; ``tests/unit/local`` checks them offline.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from p1_retrain.local import template as tpl
from p1_retrain.local.iam_gate import template_policies as tp
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMPLE = ROOT / "events" / "data" / "sample.csv"
RUN_TIMEOUT = 120.0
# A training that runs until CheckTraining has polled it once (then the emulator's clock jumps past it):
# however slow the machine, StartWatch finds it running and CheckTraining makes its calls.
TRAINING_SECONDS = 3600.0
TRAINING_POLLS = 2  # StartWatch's one ask, then CheckTraining's first poll
# One retry of a denied step instead of six: the denial is what is under test, not the backoff.
PARAMETERS = {**FAST_PARAMETERS, "TaskRetryMaxAttempts": "1"}
# Cheapest scenario first: the one that runs the fewest steps.
SCENARIO_ORDER = (tp.FAILURE, tp.TRAINING_FAILURE, tp.RETRAIN, tp.TRAINING, tp.SWITCH)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not getattr(LocalStack, "enforces_iam", False),
        reason="the local stack does not enforce IAM yet (LocalStack.enforces_iam): functions must run as "
        "their own roles behind the IAM gate for a removed statement to be denied",
    ),
]

SAM = tpl.load_template(TEMPLATE)
NEEDED = tp.needed_statements(SAM, ROOT)


def _scenario(role: str, index: int) -> tuple[str, list[str]]:
    calls = tp.denied_calls(SAM, ROOT, role, index)
    scenarios = {scenario for call in calls for scenario in call.scenarios}
    chosen = next(scenario for scenario in SCENARIO_ORDER if scenario in scenarios)
    return chosen, sorted({call.action for call in calls if chosen in call.scenarios})


def _drop(stack: LocalStack, emulator, scenario: str) -> None:
    name = secrets.token_hex(4)
    # Keys with "+" (a space, URL-decoded): the functions look up which form exists (s3:ListBucket).
    if scenario in (tp.RETRAIN, tp.SWITCH):
        stack.put_object(f"incoming/demo/{name}+1.csv", SAMPLE)
    elif scenario == tp.FAILURE:
        stack.put_object(f"incoming/demo/{name}-empty.csv", b"")  # EmptyObject: recorded under failed/
    elif scenario == tp.TRAINING:
        # Still running when StartWatch asks once, so CheckTraining polls it at least once after a wait.
        process_id = emulator.admin.create_training("demo", seconds=TRAINING_SECONDS, outcome="finished")
        stack.put_object(
            f"training/demo/{name}+1.json", json.dumps({"external_process_id": process_id}).encode()
        )
    elif scenario == tp.TRAINING_FAILURE:
        stack.put_object(f"training/demo/{name}.json", b"{not json")  # BadTrainingRequest
    else:
        raise AssertionError(f"unknown scenario {scenario}")


@contextlib.contextmanager
def _training_ends_after_polls(emulator, polls: int = TRAINING_POLLS) -> Iterator[None]:
    """While the block runs: once the emulator has answered ``polls`` training-status requests, move its
    clock past the training, which then finishes (never, when a denied step stops polling first)."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            asked = [item for item in emulator.admin.requests_log() if item["endpoint"] == "training_status"]
            if len(asked) >= polls:
                emulator.admin.advance_clock(TRAINING_SECONDS)
                return

    watcher = threading.Thread(target=watch, name="training-clock", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join(10)


def _evidence(stack: LocalStack) -> str:
    """Everything a denial can show up in: execution histories, the handlers' logs, failure records."""
    texts = [json.dumps(stack.execution_history(run.execution_arn), default=str) for run in stack.runs()]
    texts += stack.logs()
    texts += [stack.read_object(key).decode("utf-8", "replace") for key in stack.list_keys("failed/")]
    return "\n".join(texts)


@pytest.mark.parametrize(
    ("role", "index", "statement"),
    [
        pytest.param(
            *item, id=f"{item.role}-{item.index}-{item.statement.get('Sid') or next(iter(item.statement))}"
        )
        for item in NEEDED
    ],
)
def test_removing_a_needed_statement_is_denied_by_name(role, index, statement, tmp_path: Path) -> None:
    from p1_retrain.emulator import EmulatorServer

    scenario, actions = _scenario(role, index)
    mutant = tp.write_template(tp.remove_statement(SAM, role, index), tmp_path / "template.json", ROOT)
    key = f"demo-{secrets.token_hex(8)}"
    with (
        EmulatorServer(port=0, models={"demo": key}, job_seconds=0.5) as emulator,
        LocalStack(
            mutant, emulator.base_url, {"demo": key}, PARAMETERS, auto_switch=scenario == tp.SWITCH
        ) as stack,
    ):
        _drop(stack, emulator, scenario)
        with _training_ends_after_polls(emulator) if scenario == tp.TRAINING else contextlib.nullcontext():
            stack.wait_all(RUN_TIMEOUT)
        evidence = _evidence(stack)
    named = [
        action for action in actions if f"not authorized to perform: {action}".lower() in evidence.lower()
    ]
    assert named, (
        f"removing {role} statement {index} ({statement}) denied none of {actions} in a {scenario} run"
    )
