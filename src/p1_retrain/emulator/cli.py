"""``p1-retrain emulator``: serve the emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from p1_retrain.emulator.server import DEFAULT_MODELS, EmulatorServer


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a whole number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: must be between 0 and 65535")
    return port


def seconds(text: str) -> float:
    """An argparse type: a duration in seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be 0 or more")
    return value


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with parsed ``p1-retrain emulator`` arguments that no single option can tell."""
    names = [name for name, _key in args.model]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return f"--model {repeated[0]!r} given more than once: give each model one NAME=KEY"
    for name, key in args.model:
        if not all(char.isascii() and char.isprintable() and not char.isspace() for char in key):
            return (
                f"--model {name!r}: its KEY must be printable ASCII without spaces "
                "(it is sent as the x-api-key header)"
            )
    return None


def run(args: argparse.Namespace) -> int:
    """Start the emulator from parsed ``p1-retrain emulator`` arguments and serve until told to stop."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    models = dict(args.model) if args.model else dict(DEFAULT_MODELS)
    server = EmulatorServer(
        host=args.host,
        port=args.port,
        models=models,
        job_seconds=args.job_seconds,
        storage_dir=getattr(args, "storage_dir", None),
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as exc:
            print(f"p1-retrain emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        print(f"Prediction One emulator listening on {server.base_url}", flush=True)
        print(f"models: {', '.join(sorted(models))} (one API key each, sent as x-api-key)", flush=True)
        if models.get("demo") == DEFAULT_MODELS["demo"]:
            print(
                f'try: curl -H "x-api-key:demo-key" -G {server.base_url}/v1/external/retrain_jobs/upload_url '
                "--data-urlencode filename=data.csv",
                flush=True,
            )
        print(f"admin routes under {server.base_url}/_emulator/ (see the package documentation)", flush=True)
        stop.wait()
        print("stopping", flush=True)
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
