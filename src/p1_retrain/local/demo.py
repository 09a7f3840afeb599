"""``p1-retrain demo``: the whole pipeline on this machine, from dropped files to archived results.

An emulator of Prediction One serves on a free loopback port; the local stack deploys ``template.yaml``
into moto and runs the real handlers; the files are dropped under ``incoming/<model>/``, run at once,
and their archived results and failure records are copied to ``--output``. The last thing written to
stdout is the JSON summary described in docs/development.md ("The local stack and ``p1-retrain demo``");
the exit status is 1 when any file failed, 2 when the command itself could not run.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import secrets
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from p1_retrain.local.data import model_names, synthetic_csv
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.progress import Progress, RunView, observe
from p1_retrain.local.runs import Run
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_DATA = ("events", "data")
OUTPUT_PREFIXES = ("results/", "failed/")
REFRESH_SECONDS = 1.0
NOT_STARTED = "NOT_STARTED"


class DemoError(RuntimeError):
    """The demo cannot run as asked (a missing file, a bad option)."""


@dataclass
class Drop:
    """One object the demo puts under ``incoming/``."""

    key: str
    body: bytes | Path
    version_id: str | None = None

    @property
    def model(self) -> str:
        return self.key.split("/")[1]

    @property
    def filename(self) -> str:
        return PurePosixPath(self.key).name

    def sha256(self) -> str:
        if isinstance(self.body, bytes):
            return hashlib.sha256(self.body).hexdigest()
        digest = hashlib.sha256()
        with self.body.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


# -- what to drop -----------------------------------------------------------------------------------------


def project_root() -> Path:
    """The folder holding ``template.yaml`` (the source tree this package is installed from, else cwd)."""
    for folder in (PROJECT_ROOT, Path.cwd()):
        if (folder / "template.yaml").is_file():
            return folder
    raise DemoError("template.yaml not found: run the demo from the project folder")


def _existing(path_text: str, what: str) -> Path:
    path = Path(path_text)
    if not path.is_file():
        raise DemoError(f"{what} {path_text!r} is not a readable file")
    return path


def _zip(train: Path, evaluation: Path) -> bytes:
    from prediction_one.zipbuild import build_train_eval_zip

    out = io.BytesIO()
    build_train_eval_zip(train, evaluation, out, train.name, evaluation.name)
    return out.getvalue()


def model_folder(folder: str) -> str:
    """The model a ``--model`` value names: its first folder (``demo/2026/11`` is model ``demo``, files
    going under ``incoming/demo/2026/11/``), as on AWS, where the model is the first folder only."""
    parts = folder.split("/")
    if not folder or any(not part.strip() or part in {".", ".."} for part in parts):
        raise DemoError(
            f"--model {folder!r} must be a folder name, optionally with sub-folders (like demo/2026/11); "
            "no empty, '.' or '..' parts and no leading or trailing '/'"
        )
    return parts[0]


def plan_drops(args: argparse.Namespace, root: Path) -> list[Drop]:
    """The objects to drop, from FILEs, --eval, --train-eval and --count (samples when none is given)."""
    model = args.model  # the model folder, optionally with sub-folders: <model>/2026/11
    model_folder(model)
    if args.count < 0:
        raise DemoError("--count must be 0 or more")
    if args.models < 1:
        raise DemoError("--models must be 1 or more")
    if not 0.0 <= args.fault_rate <= 1.0:
        raise DemoError("--fault-rate must be between 0 and 1")
    if args.job_seconds < 0:
        raise DemoError("--job-seconds must be 0 or more")
    if args.eval and not args.files:
        raise DemoError("--eval needs at least one FILE to pair with the evaluation data")
    drops: list[Drop] = []
    evaluation = _existing(args.eval, "--eval file") if args.eval else None
    for text in args.files:
        path = _existing(text, "file")
        if evaluation is not None:
            drops.append(Drop(f"incoming/{model}/{path.stem}.zip", _zip(path, evaluation)))
        else:
            drops.append(Drop(f"incoming/{model}/{path.name}", path))
    for train_text, eval_text in args.train_eval:
        train = _existing(train_text, "--train-eval training file")
        pair_eval = _existing(eval_text, "--train-eval evaluation file")
        drops.append(Drop(f"incoming/{model}/{train.stem}+{pair_eval.stem}.zip", _zip(train, pair_eval)))
    names = model_names(args.models)
    for index in range(args.count):
        drops.append(
            Drop(f"incoming/{names[index % len(names)]}/synthetic-{index + 1:03d}.csv", synthetic_csv(index))
        )
    if not drops:
        samples = root.joinpath(*SAMPLE_DATA)
        sample, train, evaluation = (samples / "sample.csv", samples / "train.csv", samples / "eval.csv")
        for path in (sample, train, evaluation):
            _existing(str(path), "sample data")
        drops = [
            Drop(f"incoming/{model}/{sample.name}", sample),
            Drop(f"incoming/{model}/{train.stem}+{evaluation.stem}.zip", _zip(train, evaluation)),
        ]
    return drops


def training_drop(admin: Any, model: str, seconds: float) -> Drop:
    """Start a training process in the emulator and the ``training/`` object that makes the watcher
    follow it (through the training-status endpoint)."""
    process_id = admin.create_training(model, seconds=seconds, outcome="finished")
    body = json.dumps({"external_process_id": process_id}).encode()
    return Drop(f"training/{model}/training-{process_id}.json", body)


def demo_api_key(model: str) -> str:
    """A random API key for ``model`` that can travel in an HTTP header whatever the model's language:
    ASCII letters of the name when it has some (readable in the emulator's lists), then random hex."""
    readable = "".join(char for char in model if char.isascii() and (char.isalnum() or char in "-_"))
    return f"{readable[:24] or 'model'}-{secrets.token_hex(8)}"


# -- running ------------------------------------------------------------------------------------------------


def _timeout(args: argparse.Namespace, drops: list[Drop]) -> float:
    return 120.0 + 20.0 * args.job_seconds + 3.0 * len(drops)


def error_text(stack: LocalStack, run: Run) -> str | None:
    """The failure in plain words: the failure record's error name and message, with the documented
    Prediction One row when the error is one; else what the execution itself reported."""
    if run.status == "SUCCEEDED":
        return None
    record: dict[str, Any] = dict(run.failure)
    if record.get("failure_key"):
        try:
            record = json.loads(stack.read_object(record["failure_key"]))
        except (ClientError, ValueError) as exc:
            reason = f"failure record {record['failure_key']} unreadable: {type(exc).__name__}"
            record["message"] = f"{record.get('message') or 'no message'} ({reason})"
    if record.get("error"):
        text = f"{record['error']}: {record.get('message') or 'no message'}"
        documented = record.get("documented_error") or {}
        if documented.get("message") and documented["message"] not in text:
            row = f'{documented.get("code")} {documented.get("error")} "{documented["message"]}"'
            text += f" (Prediction One: {row})"
        return text
    step_error = (run.state or {}).get("error") or {}
    if step_error.get("Error"):
        try:
            message = json.loads(step_error.get("Cause") or "").get("errorMessage")
        except (ValueError, AttributeError):
            message = step_error.get("Cause")
        return f"{step_error['Error']}: {message or 'no message'}"
    return f"{run.error or run.status}: {run.cause or 'no cause given'}"


def drive(
    stack: LocalStack, progress: Progress, timeout: float
) -> tuple[dict[str, Run], dict[str, str | None]]:
    """Start and watch every execution until all have finished (or ``timeout`` s passed); return the
    runs and the error text of each finished one, by execution ARN."""
    deadline = time.monotonic() + timeout
    finished: dict[str, RunView] = {}
    tick = threading.Event()
    while True:
        stack.pump_events()
        runs = {run.execution_arn: stack.refresh(run.execution_arn) for run in stack.runs()}
        views = []
        for arn, run in runs.items():
            if arn not in finished:
                view = observe(run.key or run.name, stack.execution_history(arn), arn, run.version_id)
                if run.finished:
                    view = replace(view, outcome=run.status, error=error_text(stack, run))
                    finished[arn] = view
                views.append(view)
            else:
                views.append(finished[arn])
        progress.update(views)
        # Events are delivered while the objects are put, so the first pump started every execution:
        # a drop without one is a key the rule's pattern did not match.
        errors = {arn: view.error for arn, view in finished.items()}
        if all(run.finished for run in runs.values()):
            return runs, errors
        if time.monotonic() >= deadline:
            progress.note(f"stopping: executions still running after {timeout:g} s")
            return runs, errors
        tick.wait(REFRESH_SECONDS)


def summarize(
    admin: Any, drops: list[Drop], runs: dict[str, Run], errors: dict[str, str | None]
) -> dict[str, Any]:
    """The command contract's JSON object; job counts come from the emulator's own lists."""
    by_version = {(run.key, run.version_id): run for run in runs.values()}
    items = []
    for drop in drops:
        run = by_version.get((drop.key, drop.version_id))
        if run is None:
            items.append(
                {
                    "key": drop.key,
                    "status": NOT_STARTED,
                    "retrain_job_id": None,
                    "result_key": None,
                    "switched": False,
                    "error": "no execution started: the object did not match the rule's pattern",
                }
            )
            continue
        status = run.status
        error = errors.get(run.execution_arn)
        if not run.finished:
            error = f"still running at the end of the demo (last status {status})"
        items.append(
            {
                "key": drop.key,
                "status": status,
                "retrain_job_id": run.retrain_job_id,
                "result_key": run.result_key,
                "switched": run.switched,
                "error": error,
            }
        )
    uploaded = [job for job in admin.jobs() if job.get("uploaded")]
    jobs_per_source = Counter(
        (job.get("model"), job.get("filename"), job.get("upload_sha256")) for job in uploaded
    )
    sources = Counter((drop.model, drop.filename, drop.sha256()) for drop in drops)
    duplicates = sum(max(0, count - sources.get(source, 0)) for source, count in jobs_per_source.items())
    succeeded = sum(1 for item in items if item["status"] == "SUCCEEDED")
    return {
        "files": len(drops),
        "succeeded": succeeded,
        "failed": len(drops) - succeeded,
        "retrain_jobs_created": len(uploaded),
        "duplicate_jobs": duplicates,
        "faults_injected": admin.fault_counts(),
        "runs": items,
    }


def write_output(stack: LocalStack, folder: Path, summary: dict[str, Any]) -> list[Path]:
    """Copy every archived result, summary and failure record to ``folder``, plus the demo summary."""
    folder.mkdir(parents=True, exist_ok=True)
    base = folder.resolve()
    written = []
    for prefix in OUTPUT_PREFIXES:
        for key in stack.list_keys(prefix):
            parts = PurePosixPath(key).parts
            if key.endswith("/") or any(part in {"", ".", ".."} for part in parts):
                continue
            target = base.joinpath(*parts)
            if not target.resolve().is_relative_to(base):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(stack.read_object(key))
            written.append(target)
    summary_path = base / "demo-summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written.append(summary_path)
    return written


def _print_table(summary: dict[str, Any]) -> None:
    for item in summary["runs"]:
        outcome = item["result_key"] or item["error"] or ""
        switched = ", switched" if item["switched"] else ""
        print(f"{item['status']:<10} {item['key']}{switched}\n           {outcome}")
    print(
        f"{summary['succeeded']}/{summary['files']} succeeded, {summary['failed']} failed, "
        f"{summary['retrain_jobs_created']} retrain jobs, {summary['duplicate_jobs']} duplicates"
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``p1-retrain demo``."""
    from p1_retrain.emulator import EmulatorServer
    from p1_retrain.emulator.faults import KINDS

    progress = Progress(sys.stderr)
    try:
        root = project_root()
        drops = plan_drops(args, root)
    except DemoError as exc:
        print(f"p1-retrain demo: {exc}", file=sys.stderr)
        return 2
    watched = model_folder(args.model)
    models = sorted({drop.model for drop in drops} | ({watched} if args.train_watch else set()))
    api_keys = {model: demo_api_key(model) for model in models}
    try:
        with EmulatorServer(port=0, models=api_keys, job_seconds=args.job_seconds) as emulator:
            if args.fault_rate > 0:
                emulator.admin.set_faults(rate=args.fault_rate, seed=args.fault_seed, kinds=KINDS)
            if args.train_watch:
                drops.append(training_drop(emulator.admin, watched, args.job_seconds))
            progress.note(f"Prediction One emulator on {emulator.base_url}; deploying template.yaml")
            with LocalStack(
                root / "template.yaml", emulator.base_url, api_keys, FAST_PARAMETERS, auto_switch=args.switch
            ) as stack:
                progress.note(
                    f"dropping {len(drops)} file(s) for {len(models)} model(s) into s3://{stack.bucket}/"
                )
                for drop in drops:
                    drop.version_id = stack.put_object(drop.key, drop.body)
                runs, errors = drive(stack, progress, _timeout(args, drops))
                progress.finish()
                summary = summarize(emulator.admin, drops, runs, errors)
                written = write_output(stack, Path(args.output), summary)
                progress.note(f"wrote {len(written)} file(s) to {Path(args.output).resolve()}")
    except (LocalStackError, OSError) as exc:
        print(f"p1-retrain demo: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary))
    else:
        _print_table(summary)
        print(json.dumps(summary, indent=2))
    return 0 if summary["failed"] == 0 else 1
