"""``p1-retrain serve``: keep the local stack running for any client until SIGINT or SIGTERM.

The first stdout line is one JSON object telling a client how to reach the stack (endpoint, region, the
stack's admin credentials, bucket, state machines, the Prediction One base URL); progress goes to stderr with
the same display as ``demo``. Any object put under ``incoming/`` (or ``training/``) through the endpoint
starts a run through the template's own rules: the stack pumps events in the background. By default the
embedded Prediction One emulator answers; ``--api-base-url`` with ``--model NAME=KEY`` uses another API.
API keys are written only into the stack's secret, never to stdout, stderr or logs.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

from p1_retrain.local.demo import DemoError, error_text, project_root
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.progress import Progress, RunView, observe
from p1_retrain.local.stack import FAST_PARAMETERS, STACK_NAME, LocalStack

REFRESH_SECONDS = 1.0
DEFAULT_MODEL = "demo"


def connection(stack: LocalStack, api_base_url: str) -> dict[str, Any]:
    """The first line ``serve`` prints."""
    return {
        "endpoint_url": stack.endpoint_url,
        "region": stack.region,
        "stack_name": STACK_NAME,
        "bucket": stack.bucket,
        "aws_access_key_id": stack.admin_credentials["aws_access_key_id"],
        "aws_secret_access_key": stack.admin_credentials["aws_secret_access_key"],
        "state_machine_arns": dict(stack.state_machines),
        "api_base_url": api_base_url,
    }


def watch(stack: LocalStack, progress: Progress, stopping: threading.Event) -> None:
    """Show every run the stack started until ``stopping`` is set (then once more)."""
    finished: dict[str, RunView] = {}
    reported = 0
    while True:
        stopped = stopping.wait(REFRESH_SECONDS)
        views = []
        for run in stack.runs():
            arn = run.execution_arn
            if arn in finished:
                continue
            run = stack.refresh(arn)
            view = observe(run.key or run.name, stack.execution_history(arn))
            if run.finished:
                view = replace(view, outcome=run.status, error=error_text(stack, run))
                finished[arn] = view
            views.append(view)
        if views:
            progress.update(views)
        for item in stack.undelivered[reported:]:
            progress.note(f"event not delivered: {item.get('error')}: {item.get('message')}")
        reported = len(stack.undelivered)
        if stopped:
            return


def run(args: argparse.Namespace) -> int:
    """Entry point of ``p1-retrain serve``."""
    from p1_retrain.emulator import EmulatorServer
    from p1_retrain.emulator.faults import KINDS

    progress = Progress(sys.stderr, live=False)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        root = project_root()
        if args.api_base_url and not args.model:
            raise DemoError("--api-base-url needs at least one --model NAME=KEY")
        if not 0.0 <= args.fault_rate <= 1.0:
            raise DemoError("--fault-rate must be between 0 and 1")
        if args.api_base_url and args.fault_rate:
            raise DemoError("--fault-rate applies to the embedded emulator only")
        models = dict(args.model) or {DEFAULT_MODEL: f"{DEFAULT_MODEL}-key"}
        with ExitStack() as resources:
            if args.api_base_url:
                base_url, parameters = args.api_base_url, {}
            else:
                emulator = resources.enter_context(
                    EmulatorServer(port=0, models=models, job_seconds=args.job_seconds)
                )
                if args.fault_rate > 0:
                    emulator.admin.set_faults(rate=args.fault_rate, seed=1234, kinds=KINDS)
                base_url, parameters = emulator.base_url, FAST_PARAMETERS
            progress.note(f"deploying template.yaml (Prediction One at {base_url})")
            stack = resources.enter_context(
                LocalStack(
                    root / "template.yaml", base_url, models, parameters, port=args.port, auto_pump=True
                )
            )
            print(json.dumps(connection(stack, base_url)), flush=True)
            progress.note(
                f"ready on {stack.endpoint_url}: put files under s3://{stack.bucket}/incoming/<model>/ "
                f"(models: {', '.join(sorted(models))}); Ctrl-C or SIGTERM stops"
            )
            watch(stack, progress, stopping)
            progress.note("stopping")
    except (DemoError, LocalStackError, OSError) as exc:
        print(f"p1-retrain serve: {exc}", file=sys.stderr)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
