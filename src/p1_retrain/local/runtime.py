"""A Lambda-like runtime without Docker: each function runs in worker processes of its own.

:class:`LambdaRuntime` keeps, per function, a set of warm workers (:mod:`.worker` processes). An invocation
takes an idle worker or starts a new one (a cold start: the handler is imported then, as in Lambda's init
phase); overlapping invocations run in as many workers at once. A worker gets only the function's own
environment: the template's variables, the variables Lambda itself sets, its role's session credentials and
the stack's endpoint (never the stack's own credentials). ``Timeout`` is enforced by the runtime (an
invocation past it is killed, with its worker, and answers ``Sandbox.Timedout`` as Lambda does);
``MemorySize`` is the worker's data limit (exceeding it answers ``Runtime.OutOfMemory`` and ends the
worker). What a worker writes on stdout and stderr is the function's log (:meth:`LambdaRuntime.lines`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from p1_retrain.local import worker as worker_module
from p1_retrain.local.template import FunctionSource
from p1_retrain.local.worker import END_LINE, OUT_OF_MEMORY, error_payload

TIMEOUT_ERROR = "Sandbox.Timedout"
# Execution environments one function may have at once on this machine (Lambda would start more).
DEFAULT_MAX_WORKERS = 4
_START_SECONDS = 60.0
# How long an answered invocation waits for its END log line before returning without it.
_LOG_SECONDS = 5.0
# Variables a worker inherits from the stack's process (none of them names an AWS identity or endpoint).
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class DeployedFunction:
    """A function as deployed in moto, with where its real code lives."""

    name: str
    arn: str
    source: FunctionSource
    environment: dict[str, str]
    timeout_seconds: float = 3
    memory_mb: int = 128
    role_arn: str = ""


@dataclass
class Invocation:
    """What one invocation returned (``error``: Lambda's ``FunctionError``, ``Unhandled`` when it failed)."""

    function: str
    request_id: str
    error: str | None = None
    payload: bytes = b""
    cold_start: bool = False
    worker_pid: int = 0


@dataclass(frozen=True)
class LogLine:
    """One line a function wrote (``function`` is the deployed function's name)."""

    function: str
    stream: str
    text: str


@dataclass
class _Worker:
    function: DeployedFunction
    pid: int
    requests: IO[str]
    answers: queue.Queue = field(default_factory=queue.Queue)
    threads: list[threading.Thread] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    # Request ids whose ``END RequestId`` line the stdout reader has recorded, in order.
    logged: queue.Queue = field(default_factory=queue.Queue)

    @property
    def alive(self) -> bool:
        return not self.ended.is_set()


class _Zygote:
    """The process that forks workers (``python -m p1_retrain.local.worker --zygote``)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        environment = {name: os.environ[name] for name in _INHERITED if name in os.environ}
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, running our own module
            # By path, not ``-m``: the worker imports nothing of this package (nor what the stack imports).
            [sys.executable, worker_module.__file__, "--zygote", str(theirs.fileno())],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        )
        theirs.close()
        self._socket = ours
        self._answers = ours.makefile("r", encoding="utf-8")
        self._lock = threading.Lock()

    def fork(self, environment: dict[str, str], spec: dict[str, object], fds: list[int]) -> int:
        message = json.dumps({"environment": environment, "spec": spec}).encode("utf-8")
        with self._lock:
            socket.send_fds(self._socket, [message], fds)
            line = self._answers.readline()
        if not line:
            raise RuntimeError("the worker zygote ended")
        return int(json.loads(line)["pid"])

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._answers.close()
            self._socket.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class LambdaRuntime:
    """Invoke functions by name or ARN in their own worker processes."""

    def __init__(
        self,
        functions: list[DeployedFunction],
        endpoint_url: str,
        region: str,
        credentials: dict[str, dict[str, str]],
        layer_dirs: list[Path],
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self.functions = {function.name: function for function in functions}
        self.max_workers = max_workers
        self._slots = {name: threading.BoundedSemaphore(max_workers) for name in self.functions}
        self.endpoint_url = endpoint_url
        self.region = region
        self._credentials = credentials
        self._layer_dirs = [str(path) for path in layer_dirs]
        self._idle: dict[str, list[_Worker]] = {name: [] for name in self.functions}
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._lines: list[LogLine] = []
        self._lines_lock = threading.Lock()
        self.cold_starts: dict[str, int] = dict.fromkeys(self.functions, 0)
        self._closed = False
        self._forker: _Zygote | None = None

    # -- lookup --------------------------------------------------------------------------------------------
    def resolve(self, name_or_arn: str) -> DeployedFunction | None:
        """The function an invocation addresses (name, ``name:qualifier`` or ARN)."""
        name = name_or_arn
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else name
        else:
            name = name.split(":")[0]
        return self.functions.get(name)

    def environment(self, function: DeployedFunction) -> dict[str, str]:
        """Everything a worker of ``function`` sees in ``os.environ``."""
        values = {name: os.environ[name] for name in _INHERITED if name in os.environ}
        values.update(function.environment)
        values.update({name.upper(): value for name, value in self._credentials[function.name].items()})
        values.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        return values

    # -- workers -------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Start the process that forks workers now (its imports overlap with whatever comes next)."""
        self._zygote()

    def _zygote(self) -> _Zygote:
        with self._lock:
            if self._closed:
                raise RuntimeError("the Lambda runtime is stopped")
            if self._forker is None or self._forker.process.poll() is not None:
                self._forker = _Zygote()
            return self._forker

    def _start_worker(self, function: DeployedFunction) -> _Worker:
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        spec = {
            "function_name": function.name,
            "function_arn": function.arn,
            "memory_mb": function.memory_mb,
            "code_dir": str(function.source.code_dir),
            "module": function.source.module,
            "module_path": str(function.source.module_path),
            "attribute": function.source.attribute,
            "layer_dirs": self._layer_dirs,
            "log_stream": f"local/{uuid.uuid4().hex}",
        }
        theirs = [request_read, answer_write, out_write, err_write]
        try:
            pid = self._zygote().fork(self.environment(function), spec, theirs)
        except BaseException:
            for fd in (request_write, answer_read, out_read, err_read):
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        worker = _Worker(function, pid, os.fdopen(request_write, "w", encoding="utf-8"))
        worker.threads = [
            threading.Thread(target=self._read_answers, args=(worker, answer_read), daemon=True),
            threading.Thread(target=self._read_log, args=(worker, out_read, "stdout"), daemon=True),
            threading.Thread(target=self._read_log, args=(worker, err_read, "stderr"), daemon=True),
        ]
        for thread in worker.threads:
            thread.start()
        with self._lock:
            self._all.append(worker)
            self.cold_starts[function.name] += 1
        return worker

    def _read_answers(self, worker: _Worker, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8") as stream:
            for line in stream:
                try:
                    worker.answers.put(json.loads(line))
                except json.JSONDecodeError:
                    continue
        worker.ended.set()
        worker.answers.put(None)  # the worker ended

    def _read_log(self, worker: _Worker, fd: int, name: str) -> None:
        with os.fdopen(fd, "rb") as stream:
            for raw in stream:
                text = raw.decode("utf-8", "replace").rstrip("\n")
                if text:
                    with self._lines_lock:
                        self._lines.append(LogLine(worker.function.name, name, text))
                if name == "stdout" and text.startswith(END_LINE):
                    worker.logged.put(text.removeprefix(END_LINE).strip())

    def _take(self, function: DeployedFunction) -> tuple[_Worker, bool]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the Lambda runtime is stopped")
            idle = self._idle[function.name]
            while idle:
                worker = idle.pop()
                if worker.alive:
                    return worker, False
        return self._start_worker(function), True

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed and worker.alive:
                self._idle[worker.function.name].append(worker)
                return
        self._kill(worker)

    def _kill(self, worker: _Worker) -> None:
        if worker.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        worker.ended.wait(10)  # its answer pipe closes when the kernel has ended it
        with contextlib.suppress(OSError):
            worker.requests.close()

    # -- invoking ------------------------------------------------------------------------------------------
    def invoke(self, function: DeployedFunction, body: bytes | str | None) -> Invocation:
        """Run ``function`` on ``body`` (JSON) in a worker and return the Lambda-shaped answer. At most
        ``max_workers`` invocations of one function run at once; more wait for a worker to be free."""
        with self._slots[function.name]:
            return self._invoke(function, body)

    def _invoke(self, function: DeployedFunction, body: bytes | str | None) -> Invocation:
        request_id = str(uuid.uuid4())
        worker, cold = self._take(function)
        invocation = Invocation(function.name, request_id, cold_start=cold, worker_pid=worker.pid)
        if cold:
            ready = self._answer(worker, time.monotonic() + _START_SECONDS)
            if not ready:
                self._kill(worker)
                return self._failed(
                    invocation, "Runtime.ExitError", "Runtime exited without providing a reason"
                )
        deadline = time.monotonic() + function.timeout_seconds  # the init phase is not counted
        payload = body.decode("utf-8") if isinstance(body, bytes) else (body or "")
        request = {"request_id": request_id, "payload": payload, "timeout_seconds": function.timeout_seconds}
        try:
            worker.requests.write(json.dumps(request) + "\n")
            worker.requests.flush()
        except OSError:
            self._kill(worker)
            return self._failed(invocation, "Runtime.ExitError", "Runtime exited without providing a reason")
        answer = self._answer(worker, deadline)
        if answer is _TIMED_OUT:
            self._kill(worker)
            seconds = f"{function.timeout_seconds:.2f}"
            return self._failed(invocation, TIMEOUT_ERROR, f"Task timed out after {seconds} seconds")
        if answer is None:
            self._kill(worker)
            return self._failed(invocation, "Runtime.ExitError", "Runtime exited without providing a reason")
        if answer.get("out_of_memory"):
            self._kill(worker)
            return self._failed(invocation, OUT_OF_MEMORY, "Runtime exited with error: signal: killed")
        invocation.error = answer.get("error")
        invocation.payload = str(answer.get("payload", "")).encode("utf-8")
        self._await_log(worker, request_id)
        self._give_back(worker)
        return invocation

    @staticmethod
    def _await_log(worker: _Worker, request_id: str) -> None:
        """Wait (briefly) until the reader has recorded the invocation's END line: once invoke returns, every
        line the invocation wrote is in :meth:`lines`, however far the readers lag behind the answer."""
        deadline = time.monotonic() + _LOG_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            try:
                if worker.logged.get(timeout=left) == request_id:
                    return
            except queue.Empty:
                return

    def _answer(self, worker: _Worker, deadline: float) -> dict | object | None:
        try:
            return worker.answers.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return _TIMED_OUT

    @staticmethod
    def _failed(invocation: Invocation, name: str, message: str) -> Invocation:
        invocation.error = "Unhandled"
        text = f"RequestId: {invocation.request_id} Error: {message}"
        invocation.payload = error_payload(name, text, invocation.request_id).encode("utf-8")
        return invocation

    # -- reading and stopping -------------------------------------------------------------------------------
    def lines(self) -> list[LogLine]:
        with self._lines_lock:
            return list(self._lines)

    def pids(self) -> list[int]:
        with self._lock:
            return [worker.pid for worker in self._all if worker.alive]

    def cpu_seconds(self) -> float:
        """CPU time the zygote and the live workers have used so far (from ``/proc``; 0 elsewhere)."""
        with self._lock:
            pids = [worker.pid for worker in self._all if worker.alive]
            if self._forker is not None:
                pids.append(self._forker.process.pid)
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            for idle in self._idle.values():
                idle.clear()
        for worker in workers:
            self._kill(worker)
        for worker in workers:
            for thread in worker.threads:
                thread.join(timeout=5)
        if self._forker is not None:
            self._forker.stop()
            self._forker = None


_TIMED_OUT = object()
