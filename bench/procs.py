"""Child processes with bounded waits: long-lived servers and one-shot measuring workers."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
LOGS = OUT / "logs"


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says which one and why."""


_deadline: float | None = None


def set_budget(seconds: float) -> None:
    """Bound the whole run: every later wait on a child is cut to what is left of ``seconds`` from now."""
    global _deadline
    _deadline = time.monotonic() + seconds


def bounded(timeout: float, what: str) -> float:
    """``timeout``, or less when the run's budget ends sooner; an error once the budget is spent."""
    if _deadline is None:
        return timeout
    left = _deadline - time.monotonic()
    if left <= 1:
        raise BenchError(f"{what}: the run's time budget is spent")
    return min(timeout, left)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: this one, the repository importable, no proxies for loopback."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def _log_file(name: str):
    LOGS.mkdir(parents=True, exist_ok=True)
    return (LOGS / f"{name}.log").open("ab")


@dataclass
class Service:
    """A server started with ``python -m bench.serve KIND``; stopped by closing its standard input."""

    name: str
    args: list[str]
    ready_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    endpoint: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Service:
        log = _log_file(self.name)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", *self.args],
            cwd=ROOT,
            env=child_env(self.env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        log.close()
        line = _read_line(self.process, bounded(self.ready_timeout, self.name), self.name)
        self.endpoint = json.loads(line)["endpoint"]
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
        if process.stdout:
            process.stdout.close()

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _read_line(process: subprocess.Popen[bytes], timeout: float, name: str) -> str:
    """The child's first stdout line, or an error if it exits or stays silent past ``timeout``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                process.kill()
                raise BenchError(f"{name}: not ready after {timeout:.0f} s (see bench/out/logs/{name}.log)")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                code = process.wait(timeout=5)
                raise BenchError(
                    f"{name}: exited with {code} before it was ready (see bench/out/logs/{name}.log)"
                )
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode()


def run_json(name: str, args: list[str], timeout: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python -m <args>`` to completion within ``timeout``; its last stdout line is the JSON result."""
    timeout = bounded(timeout, name)
    log = _log_file(name)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=ROOT,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{name}: did not finish within {timeout:.0f} s") from exc
    finally:
        log.close()
    lines = completed.stdout.decode(errors="replace").strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise BenchError(f"{name}: exit code {completed.returncode} (see bench/out/logs/{name}.log)")
    return json.loads(lines[-1])


def run_shell(name: str, script: str, timeout: float, env: dict[str, str] | None = None) -> float:
    """Run a shell pipeline within ``timeout`` and return its wall time in seconds; fail on any error."""
    timeout = bounded(timeout, name)
    log = _log_file(name)
    started = time.perf_counter()
    try:
        process = subprocess.Popen(
            ["bash", "-o", "pipefail", "-ec", script],
            cwd=ROOT,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            raise BenchError(f"{name}: did not finish within {timeout:.0f} s") from exc
    finally:
        log.close()
    elapsed = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"{name}: exit code {code} (see bench/out/logs/{name}.log)")
    return elapsed
