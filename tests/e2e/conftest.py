"""The local stack and an emulator, shared by the tests of one module (each test uses its own keys)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from p1_retrain.local.runs import Run
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMPLES = ROOT / "events" / "data"
JOB_SECONDS = 0.5
RUN_TIMEOUT = 90.0


def run_of_object(stack: LocalStack, key: str, version: str | None) -> Run:
    """Wait for every execution, then the one run of that object version."""
    (run,) = [run for run in stack.wait_all(RUN_TIMEOUT) if (run.key, run.version_id) == (key, version)]
    return run


def lambda_failures(stack: LocalStack, run: Run) -> list[dict]:
    """The ``lambdaFunctionFailedEventDetails`` of a run's history, in order."""
    return [
        event["lambdaFunctionFailedEventDetails"]
        for event in stack.execution_history(run.execution_arn)
        if "lambdaFunctionFailedEventDetails" in event
    ]


@contextmanager
def one_model_stack(
    model: str, function_overrides: dict[str, dict[str, Any]]
) -> Iterator[tuple[LocalStack, Any]]:
    """An emulator knowing ``model`` (a random key) and a local stack whose functions named in
    ``function_overrides`` take those properties; yields ``(stack, emulator)``."""
    from p1_retrain.emulator import EmulatorServer

    keys = {model: f"{model}-{secrets.token_hex(8)}"}
    with (
        EmulatorServer(port=0, models=keys, job_seconds=JOB_SECONDS) as emulator,
        LocalStack(
            TEMPLATE, emulator.base_url, keys, FAST_PARAMETERS, function_overrides=function_overrides
        ) as stack,
    ):
        yield stack, emulator


class Pipeline:
    """Drop objects into the local stack and wait for their executions."""

    def __init__(self, stack: LocalStack, emulator, api_keys: dict[str, str]) -> None:
        self.stack = stack
        self.emulator = emulator
        self.admin = emulator.admin
        self.api_keys = api_keys

    @staticmethod
    def unique(name: str) -> str:
        """``name`` made unique to one test: ``<8 hex>-<name>``."""
        return f"{uuid.uuid4().hex[:8]}-{name}"

    def put(self, key: str, body: bytes | Path) -> tuple[str, str | None]:
        return key, self.stack.put_object(key, body)

    def run(self, *objects: tuple[str, bytes | Path], timeout: float = RUN_TIMEOUT) -> list[Run]:
        """Put every ``(key, body)``, wait until every execution finished; the runs in the same order."""
        versions = [self.put(key, body) for key, body in objects]
        runs = {(run.key, run.version_id): run for run in self.stack.wait_all(timeout)}
        missing = [key for key, version in versions if (key, version) not in runs]
        assert not missing, f"no execution started for {missing}"
        return [runs[version] for version in versions]

    def job(self, job_id: str) -> dict:
        return self.admin.job(job_id)


@pytest.fixture
def samples() -> Path:
    """The sample data folder (``events/data``: sample.csv, train.csv, eval.csv)."""
    return SAMPLES


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    """Models ``demo``, ``churn``, ``sales`` (no switch) and ``switcher`` (switch after retrain), each with
    its own random key; ``ghost`` is in the secret but unknown to Prediction One."""
    from p1_retrain.emulator import EmulatorServer

    keys = {name: f"{name}-{secrets.token_hex(8)}" for name in ("demo", "churn", "sales", "switcher")}
    secret_entries: dict[str, str | dict] = {name: key for name, key in keys.items() if name != "switcher"}
    secret_entries["switcher"] = {"api_key": keys["switcher"], "auto_switch": True}
    secret_entries["ghost"] = f"ghost-{secrets.token_hex(8)}"
    with (
        EmulatorServer(port=0, models=keys, job_seconds=JOB_SECONDS) as emulator,
        LocalStack(TEMPLATE, emulator.base_url, secret_entries, FAST_PARAMETERS) as stack,
    ):
        yield Pipeline(stack, emulator, {**keys, "ghost": secret_entries["ghost"]})
