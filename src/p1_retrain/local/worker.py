"""Lambda execution environments: ``python worker.py --zygote FD`` (started by :mod:`.runtime`).

The zygote is the process that forks the workers: it imports boto3 and Powertools once, so a cold
start costs only the handler's own imports. A worker gets the function's environment (its role's session
credentials, the stack's endpoint) from the runtime, applies ``MemorySize`` as its data limit, imports the
handler (the init phase, once: a cold start), then answers invocations one at a time. Requests and answers
are JSON lines on two pipes; stdout and stderr are the function's log stream.

An exception becomes Lambda's error payload (``errorType`` = the exception's class name, so the state
machine's Retry and Catch match by name); running out of memory ends the process, as Lambda ends the
execution environment, with ``Runtime.OutOfMemory``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import resource
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

OUT_OF_MEMORY = "Runtime.OutOfMemory"
# The line that ends an invocation's log (as Lambda writes it); the runtime waits for it before answering.
END_LINE = "END RequestId: "
_LAMBDA_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


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


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def error_payload(name: str, message: str, request_id: str, frames: list[str] | None = None) -> str:
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": name,
            "requestId": request_id,
            "stackTrace": [frame.rstrip("\n") for frame in frames or []],
        }
    )


def _limit_memory(memory_mb: int) -> None:
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _root_logging() -> _RequestIdFilter:
    """The Lambda Python runtime's root logger: one handler on stdout, request id in each line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(_LAMBDA_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    request_filter = _RequestIdFilter()
    handler.addFilter(request_filter)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())
    return request_filter


def _import_handler(spec: dict[str, Any]) -> Any:
    for folder in reversed([spec["code_dir"], *spec["layer_dirs"]]):
        sys.path.insert(0, folder)
    module_spec = importlib.util.spec_from_file_location(
        spec["module"].replace("/", "."), spec["module_path"]
    )
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot import {spec['module_path']}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    handler = getattr(module, spec["attribute"], None)
    if not callable(handler):
        raise AttributeError(f"Handler '{spec['attribute']}' missing on module '{spec['module']}'")
    return handler


def _invoke(handler: Any, spec: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    request_id = request["request_id"]
    context = LambdaContext(
        function_name=spec["function_name"],
        invoked_function_arn=spec["function_arn"],
        memory_limit_in_mb=spec["memory_mb"],
        aws_request_id=request_id,
        deadline=time.monotonic() + float(request["timeout_seconds"]),
        log_group_name=f"/aws/lambda/{spec['function_name']}",
        log_stream_name=spec["log_stream"],
    )
    try:
        event = json.loads(request["payload"]) if request["payload"] else {}
        result = handler(event, context)
        return {"error": None, "payload": json.dumps(result)}
    except MemoryError:
        raise
    except (TypeError, ValueError) as exc:
        if "result" in locals():
            return {
                "error": "Unhandled",
                "payload": error_payload("Runtime.MarshalError", str(exc), request_id),
            }
        return _failure(exc, request_id)
    except Exception as exc:  # noqa: BLE001 - every handler error becomes Lambda's error payload
        return _failure(exc, request_id)


def _failure(exc: Exception, request_id: str) -> dict[str, Any]:
    # Like Lambda's runtime: the trace starts at the handler, not at the code that called it.
    trace = exc.__traceback__.tb_next if exc.__traceback__ else None
    frames = traceback.format_list(traceback.extract_tb(trace))
    name = type(exc).__name__
    print(f"[ERROR] {name}: {exc}", "Traceback (most recent call last):", *frames, sep="\n", flush=True)
    return {"error": "Unhandled", "payload": error_payload(name, str(exc), request_id, frames)}


def serve(read_fd: int, write_fd: int, spec: dict[str, Any]) -> int:
    """Be one execution environment: init, then answer invocations until the runtime closes the pipe."""
    requests = os.fdopen(read_fd, "r", encoding="utf-8")
    answers = os.fdopen(write_fd, "w", encoding="utf-8")
    request_filter = _root_logging()
    _limit_memory(int(spec["memory_mb"]))
    init_error: dict[str, Any] | None = None
    handler = None
    try:
        handler = _import_handler(spec)
    except MemoryError:
        init_error = {"type": OUT_OF_MEMORY, "message": "Runtime exited with error: out of memory"}
    except Exception as exc:  # noqa: BLE001 - reported to every invocation, as Lambda does
        kind = "Runtime.HandlerNotFound" if isinstance(exc, AttributeError) else "Runtime.ImportModuleError"
        init_error = {"type": kind, "message": f"Unable to import module '{spec['module']}': {exc}"}
        traceback.print_exc()
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in requests:
        request = json.loads(line)
        request_filter.request_id = request["request_id"]
        sys.stdout.write(f"START RequestId: {request['request_id']} Version: $LATEST\n")
        if init_error is not None:
            answer = {
                "error": "Unhandled",
                "payload": error_payload(init_error["type"], init_error["message"], request["request_id"]),
            }
        else:
            try:
                answer = _invoke(handler, spec, request)
            except MemoryError:
                answer = {"error": "Unhandled", "out_of_memory": True}
        sys.stdout.write(f"{END_LINE}{request['request_id']}\n")
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        if answer.get("out_of_memory") or (init_error and init_error["type"] == OUT_OF_MEMORY):
            return 137
    return 0


# Imported once by the zygote, before any worker is forked: what every handler loads at its cold start
# anyway. Never the template's own layer packages or handlers (each worker imports those itself).
PRELOADED = (
    "boto3",
    "botocore.session",
    "s3transfer.manager",
    "requests",
    "urllib3",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "aws_lambda_powertools.utilities.typing",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_xray_sdk.core",
)


def zygote(control_fd: int) -> int:
    """Fork workers on request, from one process that has already imported the common libraries.

    Each request on the Unix socket ``control_fd`` is a JSON object ``{"environment", "spec"}`` with four
    descriptors (requests read end, answers write end, stdout, stderr); the answer is ``{"pid"}``. Workers
    are reaped by the kernel (SIGCHLD ignored); the zygote ends when the socket closes.
    """
    import importlib
    import signal
    import socket

    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 20, 4)
        except OSError:
            return 0
        if not message:
            return 0
        order = json.loads(message)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                request_read, answer_write, out, err = fds
                os.dup2(out, 1)
                os.dup2(err, 2)
                os.close(out)
                os.close(err)
                os.environ.clear()
                os.environ.update(order["environment"])
                code = serve(request_read, answer_write, order["spec"])
            except BaseException:  # noqa: BLE001 - a worker never returns into the zygote's loop
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        for fd in fds:
            os.close(fd)
        control.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] != "--zygote":
        print("usage: worker.py --zygote FD (started by the local stack's Lambda runtime)", file=sys.stderr)
        return 2
    return zygote(int(sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
