"""One transfer in a fresh process that does nothing else, reporting its own peak resident memory.

``python -m bench.transfer_worker MODE`` reads its settings as JSON from ``BENCH_WORKER`` (never from the
command line, which other users of the machine can read), performs one transfer and prints one JSON line:
``{"mode", "bytes", "seconds", "rss_before_mib", "peak_rss_mib", "result"}``.

Modes:
- ``upload-real``: the deployed code path, ``functions/upload/app.py`` ``lambda_handler`` with the event the
  state machine passes it (S3 → Prediction One upload URL, streamed).
- ``upload-read-all``: the upload URL page's Python example: read the whole object into memory, then PUT it.
- ``archive-real``: ``functions/archive/app.py`` ``lambda_handler`` (Prediction One download URL → S3
  multipart).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.memory import peak_rss_mib, rss_mib

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 900.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/bench"
    log_stream_name: str = "bench"
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def load_handler(function: str) -> ModuleType:
    path = ROOT / "functions" / function / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions_{function}_app", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _invoke(function: str, event: dict[str, Any], memory_mb: int) -> tuple[float, float, dict[str, Any]]:
    module = load_handler(function)
    context = LambdaContext(function_name=f"p1-retrain-{function}", memory_limit_in_mb=memory_mb)
    before = rss_mib()
    started = time.perf_counter()
    result = module.lambda_handler(event, context)
    return before, time.perf_counter() - started, result


def _upload_read_all_then_put(settings: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    import boto3
    import requests

    s3 = boto3.client("s3")
    before = rss_mib()
    started = time.perf_counter()
    answer = requests.get(
        f"{settings['api_base_url']}/v1/external/retrain_jobs/upload_url",
        params={"filename": settings["filename"]},
        headers={"x-api-key": settings["api_key"]},
        timeout=30,
    )
    answer.raise_for_status()
    job = answer.json()
    data = s3.get_object(Bucket=settings["bucket"], Key=settings["key"])["Body"].read()
    put = requests.put(job["upload_url"], data=data, timeout=600)
    if not put.ok:
        raise RuntimeError(f"read-all-then-PUT answered HTTP {put.status_code}")
    return before, time.perf_counter() - started, {"retrain_job_id": job["retrain_job_id"]}


def main() -> int:
    mode = sys.argv[1]
    settings: dict[str, Any] = json.loads(os.environ["BENCH_WORKER"])
    if mode == "upload-real":
        before, seconds, result = _invoke("upload", settings["event"], settings["memory_mb"])
    elif mode == "archive-real":
        before, seconds, result = _invoke("archive", settings["event"], settings["memory_mb"])
    elif mode == "upload-read-all":
        before, seconds, result = _upload_read_all_then_put(settings)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    report = {
        "mode": mode,
        "bytes": settings["bytes"],
        "seconds": seconds,
        "rss_before_mib": round(before, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "result": result,
    }
    print(json.dumps(report, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
