"""Run one server in its own process so that its memory is never counted against the code being measured.

``python -m bench.serve moto`` or ``python -m bench.serve emulator --job-seconds S`` prints one JSON line
(``{"endpoint": "http://127.0.0.1:PORT"}``) once the server accepts connections, then serves until its
standard input is closed (the parent closing the pipe, or dying, stops the server).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable


def _serve_moto() -> tuple[str, Callable[[], None]]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines would carry presigned queries

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}", server.stop


def _serve_emulator(
    job_seconds: float, models: dict[str, str], storage_dir: str | None
) -> tuple[str, Callable[[], None]]:
    from p1_retrain.emulator import EmulatorServer

    server = EmulatorServer(
        host="127.0.0.1", port=0, models=models, job_seconds=job_seconds, storage_dir=storage_dir
    )
    server.start()
    return server.base_url, server.stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("kind", choices=["moto", "emulator"])
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=KEY")
    parser.add_argument("--storage-dir", help="where the emulator keeps uploads (default: its own temp dir)")
    args = parser.parse_args(argv)
    if args.kind == "moto":
        endpoint, stop = _serve_moto()
    else:
        models = dict(pair.split("=", 1) for pair in args.model) or {"demo": "demo-key"}
        endpoint, stop = _serve_emulator(args.job_seconds, models, args.storage_dir)
    print(json.dumps({"endpoint": endpoint}), flush=True)
    try:
        sys.stdin.read()  # blocks until the parent closes the pipe
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
