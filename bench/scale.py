"""Concurrency: wall time of the local stack for many files at once over one file, same job duration.

Each count runs in a fresh local stack process (``bench.stack_worker``) against one emulator process; the
clock runs from the first object put to the end of the last execution.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bench.procs import BenchError, Service, run_json
from bench.report import Report, at_most

JOB_SECONDS = 3.0
SCALE_TARGET = 5.0
#: Short waits so the run is dominated by the job and the pipeline's own work, not by the polling schedule.
PARAMETERS = {"PollIntervalSeconds": "1", "MaxPollIntervalSeconds": "2"}


def _run(name: str, endpoint: str, api_key: str, files: int, timeout: float) -> dict[str, Any]:
    settings = {
        "api_base_url": endpoint,
        "api_keys": {"demo": api_key},
        "parameters": PARAMETERS,
        "model": "demo",
        "files": files,
        "timeout": timeout - 30,
        "history": False,
    }
    result = run_json(name, ["bench.stack_worker"], timeout, {"BENCH_WORKER": json.dumps(settings)})
    statuses = [run["status"] for run in result["runs"]]
    if len(statuses) != files or any(status != "SUCCEEDED" for status in statuses):
        failed = [run for run in result["runs"] if run["status"] != "SUCCEEDED"]
        raise BenchError(f"{name}: {len(statuses)} executions for {files} files; not succeeded: {failed[:3]}")
    return result


def run(report: Report, many: int, timeout: float) -> None:
    api_key = "bench-scale-key"
    emulator_args = ["emulator", "--job-seconds", f"{JOB_SECONDS:g}", "--model", f"demo={api_key}"]
    with Service("emulator-scale", emulator_args) as emulator:
        one = _run("stack-scale-1", emulator.endpoint, api_key, 1, timeout)
        lots = _run(f"stack-scale-{many}", emulator.endpoint, api_key, many, timeout)
    ratio = lots["seconds"] / one["seconds"]
    report.add(f"scale_ratio_{many}_vs_1", round(ratio, 2), at_most(SCALE_TARGET))
    cores = os.cpu_count() or 1
    report.details["scale"] = {
        "job_seconds": JOB_SECONDS,
        "parameters": PARAMETERS,
        "wall_seconds": {"1": round(one["seconds"], 2), str(many): round(lots["seconds"], 2)},
        "stack_cpu_seconds": {"1": round(one["cpu_seconds"], 2), str(many): round(lots["cpu_seconds"], 2)},
        "cores": cores,
    }
    busy = lots["cpu_seconds"] / (lots["seconds"] * cores)
    report.notes.append(
        f"Scale: {many} files took {lots['seconds']:.1f} s wall and {lots['cpu_seconds']:.1f} s CPU in the "
        f"local stack and its function workers ({busy:.0%} of {cores} cores; "
        f"1 file: {one['seconds']:.1f} s wall, {one['cpu_seconds']:.1f} s CPU). "
        "On AWS each execution and Lambda runs on its own."
    )
