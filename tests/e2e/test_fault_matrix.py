"""The fault matrix, CI-sized: the run of ``p1-retrain demo --count 20 --fault-rate 0.2 --json`` (same files,
models, fault rate and every fault kind), in-process so the emulator's fault counts can be read: every file
succeeds with one job each, and every fault kind was really injected. ``make fault-matrix`` runs the full
100-file demo.

The files are dropped one after another (each once the previous one finished): the emulator draws faults
from one seeded generator in request order, so only a fixed request order makes a seed pick the same
faults every time; with concurrent drops the order, and so the kinds drawn, change from run to run.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from p1_retrain.emulator import EmulatorServer
from p1_retrain.emulator.faults import KINDS
from p1_retrain.local import demo
from p1_retrain.local.data import model_names, synthetic_csv
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack
from tests.e2e.conftest import TEMPLATE
from tests.e2e.matrix_support import everything_written, leaks

pytestmark = pytest.mark.slow  # a fault matrix: many runs on the local stack

FILES = 20
MODELS = 3
FAULT_RATE = 0.2
FAULT_SEED = 7
JOB_SECONDS = 0.5
SLOW_SECONDS = 0.5
RUN_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def fault_run() -> Iterator[dict[str, Any]]:
    names = model_names(MODELS)
    keys = {name: f"{name}-{secrets.token_hex(8)}" for name in names}
    drops = [
        demo.Drop(f"incoming/{names[index % MODELS]}/synthetic-{index + 1:03d}.csv", synthetic_csv(index))
        for index in range(FILES)
    ]
    with (
        EmulatorServer(port=0, models=keys, job_seconds=JOB_SECONDS) as emulator,
        LocalStack(TEMPLATE, emulator.base_url, keys, FAST_PARAMETERS) as stack,
    ):
        emulator.admin.set_faults(rate=FAULT_RATE, seed=FAULT_SEED, kinds=KINDS, slow_seconds=SLOW_SECONDS)
        for drop in drops:
            drop.version_id = stack.put_object(drop.key, drop.body)
            stack.wait_all(RUN_TIMEOUT)
        finished = stack.wait_all(RUN_TIMEOUT)
        emulator.admin.clear_faults()
        runs = {run.execution_arn: run for run in finished}
        errors = {arn: demo.error_text(stack, run) for arn, run in runs.items()}
        yield {
            "summary": demo.summarize(emulator.admin, drops, runs, errors),
            "counts": emulator.admin.fault_counts(),
            "requests": emulator.admin.requests_log(),
            "written": everything_written(stack),
            "keys": list(keys.values()),
        }


def test_every_file_succeeds_with_one_job_each(fault_run):
    summary = fault_run["summary"]

    failures = [(item["key"], item["error"]) for item in summary["runs"] if item["status"] != "SUCCEEDED"]
    assert failures == []
    assert (summary["files"], summary["succeeded"], summary["failed"]) == (FILES, FILES, 0)
    assert summary["retrain_jobs_created"] == FILES
    assert summary["duplicate_jobs"] == 0


def test_every_fault_kind_was_injected(fault_run):
    counts = fault_run["counts"]

    assert sorted(kind for kind in KINDS if counts.get(kind, 0) == 0) == [], counts
    logged = [item for item in fault_run["requests"] if item.get("fault")]
    assert sum(counts.values()) == len(logged)
    assert sum(counts.values()) >= FILES


def test_faults_leak_no_key_or_signed_url(fault_run):
    assert leaks(fault_run["written"], fault_run["keys"]) == []
