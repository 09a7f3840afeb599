"""moto as a real server on loopback, for every client of the local stack.

:class:`MotoServer` runs moto's ``ThreadedMotoServer`` in this process on a free 127.0.0.1 port. Every client
(the stack itself, the function workers, the user) talks to it over HTTP. Authorization is off while the
stack deploys itself (from :meth:`MotoServer.start` moto's ``settings.INITIAL_NO_AUTH_ACTION_COUNT`` is
infinite, until :meth:`MotoServer.stop` restores it); the stack then installs
:mod:`p1_retrain.local.iam_gate`, which turns it on and decides every request moto authorizes (the caller's
identity policies against the real resource ARN).

Step Functions' own calls (its Lambda tasks, its SNS publishes) are made over HTTP too, signed with a session
of the execution's role (``role_credentials(role_arn)``), so they are authorized as that role, as on AWS; a
Lambda task whose Invoke call is refused fails as on AWS (``Lambda.AWSLambdaException``).

DynamoDB's item operations are atomic, conditional writes included; moto's check the condition and then
write, with nothing in between held, so two requests served at once can both pass a condition only one of
them may (two executions both taking a switch gate). The server runs them one at a time
(``DYNAMODB_ITEM_OPERATIONS``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock

from botocore.config import Config

from p1_retrain.local import sessions

# Modules of moto's Step Functions interpreter that build their own boto3 clients.
_SFN_CLIENT_MODULES = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_unsupported",
)
# moto's DynamoDB backend methods that read or write items: run one at a time, as each is atomic on AWS.
DYNAMODB_ITEM_OPERATIONS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "transact_write_items",
)
Credentials = Callable[[str], dict[str, str]]

_execution = threading.local()


class MotoServer:
    """moto's server on ``127.0.0.1:port`` (0 = a free port)."""

    def __init__(self, port: int = 0, region: str = "us-east-1") -> None:
        self.port = port
        self.region = region
        self.url = ""
        self.role_credentials: Credentials | None = None
        self._server: Any = None
        self._patches: list[Any] = []
        self._saved_settings: dict[str, Any] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = threading.Lock()

    def start(self) -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.core.config import default_user_config
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        self._saved_settings = {
            "count": settings.INITIAL_NO_AUTH_ACTION_COUNT,
            "requests": ActionAuthenticatorMixin.request_count,
            "config": {name: dict(default_user_config.get(name, {})) for name in ("lambda", "stepfunctions")},
        }
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        default_user_config.setdefault("lambda", {})["use_docker"] = False
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        for name in ("werkzeug", "moto"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self._patch_moto()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.port = port
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.core.config import default_user_config

        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
            self._server = None
        for patch in reversed(self._patches):
            patch.stop()
        self._patches.clear()
        if self._saved_settings:
            settings.INITIAL_NO_AUTH_ACTION_COUNT = self._saved_settings["count"]
            ActionAuthenticatorMixin.request_count = self._saved_settings["requests"]
            for name, values in self._saved_settings["config"].items():
                default_user_config[name] = values
            self._saved_settings = {}

    def reset(self) -> None:
        """Forget every resource (moto's backends are process-wide)."""
        from moto.core.models import reset_model_data
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()
        reset_model_data()

    # -- moto hooks ---------------------------------------------------------------------------------------
    def _patch(self, target: Any, name: str, value: Any) -> None:
        patch = mock.patch.object(target, name, value)
        patch.start()
        self._patches.append(patch)

    def _patch_moto(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
            StateTaskService,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (
            StateTaskLambda,
        )

        for task_class in (StateTaskLambda, StateTaskService):
            self._patch(task_class, "_eval_execution", _as_execution_role(task_class._eval_execution))
        self._patch(StateTaskLambda, "_from_error", _lambda_task_error(StateTaskLambda._from_error))
        for module_name in _SFN_CLIENT_MODULES:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            if hasattr(module, "boto_client_for"):
                self._patch(module, "boto_client_for", self._state_machine_client)
        items = threading.RLock()  # re-entrant: a transaction calls the single-item methods
        for name in DYNAMODB_ITEM_OPERATIONS:  # every one exists: a renamed method must not go unlocked
            self._patch(DynamoDBBackend, name, _holding(items, getattr(DynamoDBBackend, name)))

    def _state_machine_client(self, region: str, service: str, state_credentials: Any = None) -> Any:
        """A client for Step Functions' own calls, signed as the execution's role."""
        from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

        role_arn = getattr(_execution, "role_arn", None)
        if not role_arn or self.role_credentials is None:
            raise RuntimeError("a Step Functions task ran outside an execution of the local stack")
        with self._clients_lock:
            client = self._clients.get((role_arn, service, region))
            if client is None:
                credentials = self.role_credentials(role_arn)
                client = sessions.session(region, **credentials).client(
                    service,
                    endpoint_url=self.url,
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        max_pool_connections=100,
                    ),
                )
                self._clients[(role_arn, service, region)] = client
        return client


# Lambda errors Step Functions reports under their own name; any other becomes Lambda.AWSLambdaException.
_LAMBDA_ERRORS = frozenset(
    {
        "ServiceException",
        "TooManyRequestsException",
        "ResourceNotFoundException",
        "ResourceConflictException",
        "InvalidRequestContentException",
        "RequestTooLargeException",
    }
)


def _lambda_task_error(method: Callable) -> Callable:
    """Step Functions' failure for a Lambda task whose Invoke call itself failed (denied, throttled...)."""

    def from_error(task: Any, env: Any, ex: Exception) -> Any:
        from botocore.exceptions import ClientError
        from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
        from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
            CustomErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

        if not isinstance(ex, ClientError):
            return method(task, env, ex)
        code = ex.response.get("Error", {}).get("Code", "")
        name = f"Lambda.{code}" if code in _LAMBDA_ERRORS else "Lambda.AWSLambdaException"
        metadata = ex.response.get("ResponseMetadata", {})
        cause = (
            f"{ex.response.get('Error', {}).get('Message', '')} (Service: AWSLambda; "
            f"Status Code: {metadata.get('HTTPStatusCode')}; Error Code: {code}; "
            f"Request ID: {metadata.get('RequestId')}; Proxy: null)"
        )
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(name),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=name, cause=cause)
            ),
        )

    return from_error


def _as_execution_role(method: Callable) -> Callable:
    """Run a task's evaluation with the execution's role known to the clients it makes (tasks run in
    threads of their own)."""

    def evaluate(task: Any, env: Any) -> None:
        execution = env.states.context_object.context_object_data.get("Execution", {})
        previous = getattr(_execution, "role_arn", None)
        _execution.role_arn = execution.get("RoleArn")
        try:
            method(task, env)
        finally:
            _execution.role_arn = previous

    return evaluate


def _holding(lock: Any, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` run while holding ``lock``."""

    @functools.wraps(method)
    def held(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return held
