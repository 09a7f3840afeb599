"""One run of the local stack in a process of its own: drop files, wait for every execution, report.

``python -m bench.stack_worker`` reads its settings as JSON from ``BENCH_WORKER``:
``{"api_base_url", "api_keys": {model: key}, "parameters": {template parameter: value}, "model",
"files": N, "timeout": seconds, "history": bool}`` and prints one JSON line:
``{"seconds", "cpu_seconds", "runs": [{"key", "status", "error", "cause"}], "histories": [[events...]],
"definition": {...}}`` where ``seconds`` runs from the first object put to the last execution's end and
``cpu_seconds`` is the CPU time over the same span of this process (moto's server and the state machine
interpreter run here) and of the stack's function workers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from typing import Any

from bench.data import small_csv
from bench.procs import ROOT


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main() -> int:
    from p1_retrain.local.stack import LocalStack

    settings: dict[str, Any] = json.loads(os.environ["BENCH_WORKER"])
    model = settings["model"]
    with LocalStack(
        ROOT / "template.yaml",
        api_base_url=settings["api_base_url"],
        api_keys=settings["api_keys"],
        parameters=settings["parameters"],
    ) as stack:
        bodies = [small_csv(seed=index) for index in range(settings["files"])]
        started = time.perf_counter()
        # The functions run in worker processes of the stack: their CPU counts too.
        cpu_before = _cpu_seconds() + stack.runtime.cpu_seconds()
        for index, body in enumerate(bodies):
            stack.put_object(f"incoming/{model}/bench-{index:03d}.csv", body)
        stack.pump_events()
        runs = stack.wait_all(timeout=settings["timeout"])
        seconds = time.perf_counter() - started
        report: dict[str, Any] = {
            "seconds": seconds,
            "cpu_seconds": _cpu_seconds() + stack.runtime.cpu_seconds() - cpu_before,
            "runs": [
                {"key": run.key, "status": run.status, "error": run.error, "cause": (run.cause or "")[:500]}
                for run in runs
            ],
        }
        if settings.get("history"):
            report["histories"] = [_plain(stack.execution_history(run.execution_arn)) for run in runs]
            machine = stack.sfn.describe_state_machine(stateMachineArn=runs[0].state_machine_arn)
            report["definition"] = json.loads(machine["definition"])
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
