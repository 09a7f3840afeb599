"""moto as a real server on loopback, with IAM enforced, for every client of the local stack.

:class:`MotoServer` runs moto's ``ThreadedMotoServer`` in this process on a free 127.0.0.1 port. Every client
(the stack itself, the function workers, the user) talks to it over HTTP. IAM is off while the stack deploys
itself (moto's ``settings.INITIAL_NO_AUTH_ACTION_COUNT`` is read on each request, so the server can switch it
on once the stack is built: :meth:`MotoServer.enforce_iam`). From then on every request must be signed by a
known identity (the stack's admin user, or a role session), and is authorized:

- against the real resource ARN by moto itself where moto passes one (S3, SQS, IAM, STS);
- where moto authorizes against ``*`` (Lambda, DynamoDB, Secrets Manager, SNS, Step Functions, KMS), by the
  ``authorizer`` callback: ``authorizer(principal_arn, action, resource)``, which raises to deny. The resource
  is the real ARN when one is known here (a Lambda function's), else ``*``.

Step Functions' own calls (its Lambda tasks, its SNS publishes) are made over HTTP too, signed with a session
of the execution's role (``role_credentials(role_arn)``), so they are authorized as that role, as on AWS.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock
from urllib.parse import unquote

import boto3
from botocore.config import Config

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
Authorizer = Callable[[str, str, str], None]
Credentials = Callable[[str], dict[str, str]]

_execution = threading.local()


class MotoServer:
    """moto's server on ``127.0.0.1:port`` (0 = a free port) with the local stack's IAM gate."""

    def __init__(self, port: int = 0, region: str = "us-east-1") -> None:
        self.port = port
        self.region = region
        self.url = ""
        self.authorizer: Authorizer = _allow_all
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

    def enforce_iam(self) -> None:
        """From now on every request is authenticated and authorized."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0

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
        from moto.core.authorization import ActionAuthenticatorMixin

        server = self
        original_gate = ActionAuthenticatorMixin._authenticate_and_authorize_action

        def gate(response: Any, iam_request_cls: type, resource: str = "*") -> None:
            server._gate(response, iam_request_cls, resource, original_gate)

        self._patch(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", gate)

        from moto.iam.access_control import IAMPolicy

        original_policy = IAMPolicy.__init__

        def policy_init(policy: Any, document: Any) -> None:
            # moto's CloudFormation keeps a role's inline policy as a dict, its evaluator wants JSON text.
            if isinstance(document, dict) and "policy_document" not in document:
                document = json.dumps(document)
            original_policy(policy, document)

        self._patch(IAMPolicy, "__init__", policy_init)

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
                client = boto3.session.Session(**credentials, region_name=region).client(
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

    def _gate(self, response: Any, iam_request_cls: type, resource: str, original: Callable) -> None:
        from urllib.parse import urlparse

        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
            original(response, iam_request_cls, resource)
            return
        if response.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return
        path = response.raw_path
        query = urlparse(response.uri).query
        request = iam_request_cls(
            account_id=response.current_account,
            method=response.method,
            path=f"{path}?{query}" if query else path,
            data=response.data,
            body=response.raw_body,
            headers=response.headers,
            action=response._get_action(),
        )
        request.check_signature()
        service = request._action.split(":", 1)[0]
        if service not in DELEGATED_SERVICES or request._action == "sts:GetCallerIdentity":
            request.check_action_permitted(resource)
            return
        principal = request._access_key.arn
        action = _IAM_ACTIONS.get(request._action, request._action)
        if resource == "*":
            resource = _resource_arn(action, response) or "*"
        try:
            self.authorizer(principal, action, resource)
        except Exception as exc:
            raise access_denied(principal, action, resource) from exc


def access_denied(principal: str, action: str, resource: str) -> Exception:
    """The error the service itself answers when IAM denies ``action``."""
    from moto.core.exceptions import JsonRESTError, _RESTError

    on = f" on resource: {resource}" if resource != "*" else ""
    message = (
        f"User: {principal} is not authorized to perform: {action}{on} "
        f"because no identity-based policy allows the {action} action"
    )
    service = action.split(":", 1)[0]
    if service in _QUERY_SERVICES:
        error: Exception = _RESTError(_QUERY_SERVICES[service], message)
    else:
        error = JsonRESTError("AccessDeniedException", message)
    error.code = 403  # type: ignore[attr-defined]
    return error


# Services moto authorizes against ``*`` (their calls go to the authorizer, with the real ARN where known).
DELEGATED_SERVICES = frozenset({"lambda", "dynamodb", "secretsmanager", "sns", "states", "kms"})
# moto names an action after the API operation; where IAM's name differs, IAM's.
_IAM_ACTIONS = {
    "lambda:Invoke": "lambda:InvokeFunction",
    "lambda:InvokeAsync": "lambda:InvokeFunction",
    "lambda:InvokeWithResponseStream": "lambda:InvokeFunction",
}
# Services speaking the query protocol, and their denial's error code.
_QUERY_SERVICES = {
    "sns": "AuthorizationError",
    "sqs": "AccessDenied",
    "iam": "AccessDenied",
    "sts": "AccessDenied",
}
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


def _resource_arn(action: str, response: Any) -> str | None:
    """The resource ARN of a request moto authorizes against ``*``, where the request names it plainly."""
    service = action.split(":", 1)[0]
    region, account = response.region, response.current_account
    if service == "lambda":
        parts = [unquote(part) for part in response.raw_path.split("/") if part]
        if len(parts) >= 3 and parts[1] == "functions":
            name = parts[2]
            return name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"
        return None
    try:
        if service == "sns":
            return response._get_param("TopicArn")
        if service == "states":
            return response._get_param("stateMachineArn") or response._get_param("executionArn")
        if service == "dynamodb":
            table = response._get_param("TableName")
            return f"arn:aws:dynamodb:{region}:{account}:table/{table}" if table else None
        if service == "secretsmanager":
            return _secret_arn(response._get_param("SecretId"), account, region)
    except (ValueError, KeyError, TypeError):
        return None
    return None


def _secret_arn(secret_id: str | None, account: str, region: str) -> str | None:
    if not secret_id or secret_id.startswith("arn:"):
        return secret_id
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[account][region].secrets.get(secret_id)
    return getattr(secret, "arn", None)


def _allow_all(principal: str, action: str, resource: str) -> None:
    return None


def role_arn_of(principal_arn: str) -> str | None:
    """``arn:aws:iam::<account>:role/<name>`` for an assumed-role session ARN (else ``None``)."""
    parts = principal_arn.split(":")
    if len(parts) < 6 or parts[2] != "sts" or not parts[5].startswith("assumed-role/"):
        return None
    name = parts[5].split("/")[1]
    return f"arn:{parts[1]}:iam::{parts[4]}:role/{name}"
