"""Cold-start proxy: a handler module's import time in a fresh interpreter, against ``import boto3`` alone.

Each sample is a new interpreter that imports exactly one thing and reports ``perf_counter`` around it, with
the layer's folder and the function's folder first on ``sys.path`` as in Lambda (``/opt/python``,
``/var/task``) and a Lambda-like environment, so Powertools sets itself up as it would there.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.procs import ROOT, BenchError, bounded, child_env

FUNCTIONS = ROOT / "functions"
LAYER = ROOT / "layers" / "pipeline"

_PROBE = """
import importlib.util, sys, time
target = sys.argv[1]
started = time.perf_counter()
if target == "boto3":
    import boto3  # noqa: F401
else:
    spec = importlib.util.spec_from_file_location("app", target)
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
    assert callable(getattr(module, "lambda_handler", None)), "no lambda_handler in " + target
print(time.perf_counter() - started)
"""


def lambda_like_env(function: str) -> dict[str, str]:
    """Settings every handler may read at import time; no endpoint is contacted while importing."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": f"p1-retrain-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "DATA_BUCKET": "bench-bucket",
        "SECRET_ID": "bench-secret",
        "STATE_TABLE": "bench-table",
        "POWERTOOLS_SERVICE_NAME": "p1-retrain",
        "POWERTOOLS_METRICS_NAMESPACE": "P1Retrain",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def handler_files() -> list[Path]:
    return sorted(FUNCTIONS.glob("*/app.py"))


def _probe(
    target: str, function_dir: Path | None, env: dict[str, str], timeout: float, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[bytes]:
    timeout = bounded(timeout, f"importing {target}")
    paths = [str(LAYER)] + ([str(function_dir)] if function_dir else [])
    environment = child_env(env)
    environment["PYTHONPATH"] = ":".join([*paths, environment["PYTHONPATH"]])
    try:
        completed = subprocess.run(
            [sys.executable, *flags, "-c", _PROBE, target],
            cwd=function_dir or ROOT,
            env=environment,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"importing {target} took longer than {timeout:.0f} s") from exc
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise BenchError(f"importing {target} failed: {tail[0]}")
    return completed


def _sample(target: str, function_dir: Path | None, env: dict[str, str], timeout: float) -> float:
    completed = _probe(target, function_dir, env, timeout)
    return float(completed.stdout.decode().strip().splitlines()[-1])


def breakdown(
    target: str, function_dir: Path | None, env: dict[str, str], timeout: float
) -> dict[str, float]:
    """Milliseconds of import work per top-level package (``-X importtime`` self times), largest first."""
    completed = _probe(target, function_dir, env, timeout, ("-X", "importtime"))
    totals: dict[str, float] = {}
    for line in completed.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if not self_us.isdigit():
            continue  # the header line
        root = name.split(".")[0]
        totals[root] = totals.get(root, 0.0) + int(self_us) / 1000
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)
    return {name: round(ms, 1) for name, ms in ranked}


def measure(runs: int = 7, timeout: float = 60.0) -> dict[str, Any]:
    """Median import seconds for boto3 and each handler, after one unmeasured warm-up of each (bytecode)."""
    files = handler_files()
    if not files:
        raise BenchError("no functions/*/app.py to import")
    targets: list[tuple[str, str, Path | None, dict[str, str]]] = [
        ("boto3", "boto3", None, lambda_like_env("boto3"))
    ]
    targets += [(f.parent.name, str(f), f.parent, lambda_like_env(f.parent.name)) for f in files]
    samples: dict[str, list[float]] = {name: [] for name, *_ in targets}
    for _name, target, folder, env in targets:  # warm-up: compile bytecode once, as a deployed package has it
        _sample(target, folder, env, timeout)
    for _ in range(runs):  # interleaved, so drift on the machine hits every target alike
        for name, target, folder, env in targets:
            samples[name].append(_sample(target, folder, env, timeout))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    boto3_seconds = medians.pop("boto3")
    slowest = max(medians, key=medians.__getitem__)
    folder = FUNCTIONS / slowest
    packages = breakdown(str(folder / "app.py"), folder, lambda_like_env(slowest), timeout)
    return {
        "runs": runs,
        "boto3_ms": round(boto3_seconds * 1000, 1),
        "handlers_ms": {name: round(seconds * 1000, 1) for name, seconds in sorted(medians.items())},
        "slowest_handler": slowest,
        "ratio": medians[slowest] / boto3_seconds,
        "samples_ms": {name: [round(v * 1000, 1) for v in values] for name, values in samples.items()},
        "slowest_handler_import_ms_by_package": dict(list(packages.items())[:12]),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
