"""``python -m bench [--quick] [--only NAME ...]``: run the benchmarks, write results.json, print a table."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench import imports, orchestration, scale, transfer
from bench.procs import LOGS, OUT, ROOT, BenchError, set_budget
from bench.report import Report, at_most

RESULTS = ROOT / "bench" / "results.json"
SECTIONS = ("imports", "orchestration", "scale", "transfer")
IMPORT_TARGET = 1.5


def _imports(report: Report, quick: bool) -> None:
    measured = imports.measure(runs=3 if quick else 7)
    report.add("handler_import_ratio_vs_boto3", round(measured["ratio"], 2), at_most(IMPORT_TARGET))
    report.add("handler_import_ms_slowest", measured["handlers_ms"][measured["slowest_handler"]])
    report.add("boto3_import_ms", measured["boto3_ms"])
    report.details["imports"] = measured
    heaviest = list(measured["slowest_handler_import_ms_by_package"].items())[:4]
    report.notes.append(
        f"Import: slowest handler is {measured['slowest_handler']}; its heaviest imports (self time): "
        + ", ".join(f"{name} {ms:g} ms" for name, ms in heaviest)
        + f"; boto3 alone {measured['boto3_ms']:g} ms."
    )


def _sections(args: argparse.Namespace) -> dict[str, Callable[[Report], None]]:
    size = args.size_mib or (64 if args.quick else 1024)
    repeats = args.repeats or (1 if args.quick else 2)
    return {
        "imports": lambda report: _imports(report, args.quick),
        "orchestration": lambda report: orchestration.run(report, args.quick, timeout=180),
        "scale": lambda report: scale.run(report, many=10 if args.quick else 50, timeout=240),
        "transfer": lambda report: transfer.TransferBench(size, repeats, timeout=120).run(report),
    }


def _machine() -> dict[str, str | int | None]:
    curl = subprocess.run(["curl", "--version"], capture_output=True, text=True, timeout=10, check=False)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "curl": curl.stdout.split(" (")[0] if curl.returncode == 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="64 MiB transfers, fewer repeats, shorter jobs")
    parser.add_argument(
        "--only", action="append", choices=SECTIONS, help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--size-mib", type=int, help="transfer size (a multiple of 4; default 1024, quick 64)"
    )
    parser.add_argument("--repeats", type=int, help="runs per transfer variant (default 2, quick 1)")
    parser.add_argument(
        "--budget", type=float, default=570.0, help="seconds the whole run may take (default 570)"
    )
    args = parser.parse_args(argv)
    if args.size_mib is not None and (args.size_mib <= 0 or args.size_mib % 4):
        parser.error(f"--size-mib must be a positive multiple of 4, got {args.size_mib}")
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if not shutil.which("curl"):
        parser.error("curl is needed for the transfer references")

    shutil.rmtree(LOGS, ignore_errors=True)
    load_before = os.getloadavg()[0]
    set_budget(args.budget)
    report = Report()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    for name, section in _sections(args).items():
        if args.only and name not in args.only:
            continue
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        try:
            section(report)
        except BenchError as exc:
            report.errors[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one failed section must not cost the others' results
            report.errors[name] = f"{type(exc).__name__}: {exc}"
        timings[name] = round(time.perf_counter() - begun, 1)
        print(f"[bench] {name} done in {timings[name]} s", file=sys.stderr, flush=True)

    header = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": _machine(),
        "section_seconds": timings,
        "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    report.notes.extend(_notes(args.quick))
    if load_before > 0.5 * (os.cpu_count() or 1):
        report.notes.append(
            f"Other work was running (1-min load average {load_before:.1f} at the start): timings are "
            "noisy; rerun on a quiet machine for numbers to compare."
        )
    report.write(RESULTS, header)
    print(report.table())
    print(f"\nwrote {RESULTS.relative_to(ROOT)} in {header['total_seconds']} s", file=sys.stderr)
    _cleanup()
    return 1 if report.errors else 0


def _notes(quick: bool) -> list[str]:
    notes = [
        "RSS: peak resident memory (VmHWM) of a fresh process that only runs the handler; moto and the "
        "emulator run in processes of their own.",
        "Upload reference: curl GET (presigned S3) | curl PUT with Content-Length "
        "(chunked and Expect blanked).",
        "Archive reference: curl GET (download URL) | split into the writer's part size, each part PUT by "
        "curl to a presigned UploadPart URL, then CompleteMultipartUpload.",
        "Cost: Step Functions standard $0.025/1k transitions + Lambda arm64 $0.20/1M requests and "
        f"$0.0000133334/GB-s at {orchestration.ASSUMED_CHECK_SECONDS:g} s billed per status check; "
        "transfers' own compute excluded. Latency: worst case (job ending just after a check).",
        "Throughput: the fastest of the runs of each variant, runs alternating code and curl (ABBA).",
    ]
    if quick:
        notes.append(
            "--quick: 64 MiB transfers, so each handler's fixed set-up (secret, idempotency record, API "
            "call) weighs on its throughput; only the full run's ratios count."
        )
    return notes


def _cleanup() -> None:
    """Drop big scratch files; keep the small logs."""
    for path in OUT.glob("*"):
        if path != LOGS:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
