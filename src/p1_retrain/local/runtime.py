"""Run the template's Lambda functions in-process, answering invocations the way Lambda does.

Each function's handler is imported from its own file under a unique module name (every handler is
``app.py``). The shared layer packages are imported afresh for each stack (a cold start per
deployment) and the previously imported modules are put back when the stack stops. An invocation
gets the function's environment, a Lambda-like context and its output captured; an exception becomes
the payload ``{"errorType": <class name>, "errorMessage": ...}`` with ``FunctionError: Unhandled``, so
the state machine's Retry and Catch match on the class name as they do on AWS.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from p1_retrain.local.capture import OutputCapture
from p1_retrain.local.environment import FunctionEnvironments
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.template import FunctionSource

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class DeployedFunction:
    """A function as deployed in moto, with where its real code lives."""

    name: str
    arn: str
    source: FunctionSource
    environment: dict[str, str]
    timeout_seconds: int = 3
    memory_mb: int = 128


@dataclass
class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """What one invocation returned (``error`` is the exception class name when it raised)."""

    function: str
    request_id: str
    error: str | None = None
    payload: bytes = b""


def layer_packages(layer_dirs: list[Path]) -> list[str]:
    """Top-level packages a layer folder provides (folders holding ``__init__.py``)."""
    return sorted(
        child.name
        for folder in layer_dirs
        if folder.is_dir()
        for child in folder.iterdir()
        if (child / "__init__.py").is_file()
    )


@contextmanager
def fresh_modules(packages: list[str], paths: list[Path]) -> Iterator[None]:
    """Import ``packages`` afresh (from ``paths`` first) inside the block; restore the old ones after."""

    def owned(name: str) -> bool:
        return any(name == package or name.startswith(package + ".") for package in packages)

    saved = {name: module for name, module in sys.modules.items() if owned(name)}
    for name in saved:
        del sys.modules[name]
    added = [str(path) for path in paths if str(path) not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for name in [name for name in sys.modules if owned(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        for path in added:
            if path in sys.path:
                sys.path.remove(path)


class LambdaRuntime:
    """In-process Lambda: load handlers, invoke them by name or ARN, keep what they printed."""

    def __init__(self, functions: list[DeployedFunction], capture: OutputCapture, namespace: str) -> None:
        self.functions = {function.name: function for function in functions}
        self.capture = capture
        self.environments = FunctionEnvironments({f.name: f.environment for f in functions})
        self._namespace = namespace
        self._handlers: dict[str, Handler] = {}

    def load(self) -> None:
        """Import every handler now, so a broken one fails the stack at start, not mid-run."""
        for function in self.functions.values():
            self._handlers[function.name] = self._import(function)

    def unload(self) -> None:
        for function in self.functions.values():
            sys.modules.pop(self._module_name(function), None)
        self._handlers.clear()

    def _module_name(self, function: DeployedFunction) -> str:
        return f"{self._namespace}_{function.source.logical_id}_{function.source.module.replace('/', '_')}"

    def _import(self, function: DeployedFunction) -> Handler:
        source = function.source
        module_name = self._module_name(function)
        spec = importlib.util.spec_from_file_location(module_name, source.module_path)
        if spec is None or spec.loader is None:
            raise LocalStackError(f"function {source.logical_id}: cannot import {source.module_path}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        with self.environments.applied(function.name), self.capture.function_context(function.name):
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(module_name, None)
                raise LocalStackError(
                    f"function {source.logical_id}: importing {source.module_path} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        handler = getattr(module, source.attribute, None)
        if not callable(handler):
            raise LocalStackError(
                f"function {source.logical_id}: {source.module_path} has no {source.attribute}"
            )
        return handler

    def resolve(self, name_or_arn: str) -> DeployedFunction | None:
        """The function an invocation addresses (name, ``name:qualifier`` or ARN)."""
        name = name_or_arn
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) > 6 else name
        else:
            name = name.split(":")[0]
        return self.functions.get(name)

    def invoke(self, function: DeployedFunction, body: bytes | str | None) -> Invocation:
        """Run the handler on ``body`` (JSON) and return the Lambda-shaped answer."""
        invocation = Invocation(function=function.name, request_id=str(uuid.uuid4()))
        context = LambdaContext(
            function_name=function.name,
            invoked_function_arn=function.arn,
            memory_limit_in_mb=function.memory_mb,
            aws_request_id=invocation.request_id,
            deadline=time.monotonic() + function.timeout_seconds,
            log_group_name=f"/aws/lambda/{function.name}",
            log_stream_name=f"local/{invocation.request_id}",
        )
        with self.environments.applied(function.name), self.capture.function_context(function.name):
            try:
                event = json.loads(body) if body else {}
                result = self._handlers[function.name](event, context)
            except Exception as exc:  # noqa: BLE001 - every handler error becomes Lambda's error payload
                self._fail(invocation, exc)
            else:
                try:
                    invocation.payload = json.dumps(result).encode("utf-8")
                except (TypeError, ValueError) as exc:
                    invocation.error = "Unhandled"
                    invocation.payload = _error_payload("Runtime.MarshalError", str(exc), invocation, [])
        return invocation

    def _fail(self, invocation: Invocation, exc: Exception) -> None:
        # Like Lambda's runtime: the trace starts at the handler, not at the code that called it.
        trace = exc.__traceback__.tb_next if exc.__traceback__ else None
        frames = traceback.format_list(traceback.extract_tb(trace))
        name = type(exc).__name__
        print(f"[ERROR] {name}: {exc}", "Traceback (most recent call last):", *frames, sep="\n")
        invocation.error = "Unhandled"
        invocation.payload = _error_payload(name, str(exc), invocation, frames)


def _error_payload(name: str, message: str, invocation: Invocation, frames: list[str]) -> bytes:
    body = {
        "errorMessage": message,
        "errorType": name,
        "requestId": invocation.request_id,
        "stackTrace": [frame.rstrip("\n") for frame in frames],
    }
    return json.dumps(body).encode("utf-8")
