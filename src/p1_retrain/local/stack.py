"""The whole stack of ``template.yaml`` on this machine: moto as a server, each function in its own workers.

``LocalStack`` starts moto's server on loopback (:mod:`.server`), deploys the template's CloudFormation
translation into it, then fills in what moto's CloudFormation leaves out, always from the template itself:
the API key secret, the bucket's EventBridge notifications and the state machines'
``DefinitionSubstitutions``. It creates an admin user for itself (and for whoever drives the stack:
``admin_credentials``), takes a session of every role the template gives a function, a state machine or a
rule target, then installs :mod:`.iam_gate`: from then on every request is authorized as AWS does, the
caller's identity policies against the real resource ARN. Every client talks to the server over HTTP.

moto's EventBridge evaluates the template's own rule pattern but cannot target Step Functions, so each such
rule also gets an SQS target; :meth:`LocalStack.pump_events` (or the background pump, ``auto_pump=True``)
drains it and starts the rule's state machine for each event as the rule's role, with the deterministic
execution name the pipeline uses everywhere. Step Functions runs the real ASL, its tasks call the functions
and the topic as the state machine's role; the functions run the real ``functions/*/app.py`` in worker
processes (see :mod:`.runtime`) as their own roles.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
import time
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

from botocore.config import Config
from botocore.exceptions import ClientError

from p1_retrain.local import iam_gate, sessions
from p1_retrain.local import template as tpl
from p1_retrain.local.errors import LocalStackError
from p1_retrain.local.intrinsics import evaluate, placeholders
from p1_retrain.local.runs import FINISHED, Run, failure_details, final_state, object_etag, source_of
from p1_retrain.local.runtime import DeployedFunction, LambdaRuntime, LogLine
from p1_retrain.local.s3events import S3EventRewriter
from p1_retrain.local.server import MotoServer

DEFAULT_REGION = "us-east-1"
STACK_NAME = "p1-retrain-local"
EVENT_TARGET_ID = "LocalStackEventQueue"
ADMIN_USER = "p1-retrain-local-admin"
# Variables that could send a client elsewhere than the local server or to a real profile.
CLEARED_ENVIRONMENT = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)
# Template parameters that make a local run take seconds: poll every second, retry after a second.
FAST_PARAMETERS = {
    "PollIntervalSeconds": "1",
    "MaxPollIntervalSeconds": "1",
    "TaskRetryIntervalSeconds": "1",
    "TaskRetryMaxDelaySeconds": "1",
}
_EXECUTION_POLL_SECONDS = 0.05
_PUMP_SECONDS = 0.2
_SHUTDOWN_SECONDS = 30.0


class LocalStack:
    """Context manager: deploy on enter, tear down on exit. Only one can be active at a time.

    ``api_keys`` becomes the secret's value: ``{model: key}``, each entry written as
    ``{"api_key": key, "auto_switch": true}`` when ``auto_switch``; an entry given as a dict is written as
    it is (so one model can switch and another not). ``parameters`` override the template's parameters
    (``ApiBaseUrl`` is ``api_base_url``); see ``FAST_PARAMETERS``. ``function_overrides`` maps a function's
    logical id to ``{"Timeout": seconds, "MemorySize": mb, "Environment": {...}}`` to apply locally (tests
    use it to make a timeout take seconds, or to point one function at an endpoint that never answers).
    ``port`` is the server's loopback port (0: a free one); ``auto_pump`` starts executions in the
    background as events arrive.
    """

    # Every request after the stack has built itself is authorized by ``iam_gate`` (the caller's identity
    # policies against the real resource ARN, for every service).
    enforces_iam: ClassVar[bool] = True
    _active: ClassVar[LocalStack | None] = None
    _active_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        template_path: str | Path,
        api_base_url: str,
        api_keys: dict[str, str | dict[str, Any]],
        parameters: dict[str, str] | None = None,
        auto_switch: bool = False,
        region: str = DEFAULT_REGION,
        port: int = 0,
        auto_pump: bool = False,
        function_overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.template_path = Path(template_path).resolve()
        self.api_keys = dict(api_keys)
        self.auto_switch = auto_switch
        self.region = region
        self.parameters = {"ApiBaseUrl": api_base_url, **{k: str(v) for k, v in (parameters or {}).items()}}
        self.function_overrides = {name: dict(values) for name, values in (function_overrides or {}).items()}
        self.auto_pump = auto_pump
        self.template: tpl.LocalTemplate | None = None
        self.resources: dict[str, str] = {}
        self.buckets: dict[str, str] = {}
        self.bucket = ""
        self.secret_arn = ""
        self.state_machines: dict[str, str] = {}
        self.skipped_resources: dict[str, str] = {}
        self.rule_targets: dict[str, list[dict[str, Any]]] = {}
        self.runtime: LambdaRuntime | None = None
        self.server = MotoServer(port=port, region=region)
        self.endpoint_url = ""
        self.admin_credentials: dict[str, str] = {}
        self.event_queues: dict[str, str] = {}  # queue url -> the state machine its rule targeted
        self._queue_targets: dict[str, dict[str, Any]] = {}  # queue url -> the rule's original target
        self._notification_queues: dict[str, str] = {}  # queue url -> topic arn
        self._notifications: list[dict[str, Any]] = []
        self.undelivered: list[dict[str, Any]] = []  # events a rule could not deliver (as its DLQ holds them)
        self._runs: dict[str, Run] = {}
        self._runs_lock = threading.Lock()
        self._pump_lock = threading.Lock()
        self._saved_environment: dict[str, str | None] = {}
        self._patch: Any = None
        self._threads_before = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pump_thread: threading.Thread | None = None
        self._pending_machines: dict[str, _PendingStateMachine] = {}
        self._outputs: dict[str, str | None] = {}
        self._s3_events = S3EventRewriter()  # S3's millisecond time, increasing sequencer, ``etag``
        self._role_credentials: dict[str, dict[str, str]] = {}
        self._role_clients: dict[str, Any] = {}
        self._iam: iam_gate.Installation | None = None
        self._session: Any = None

    # -- lifetime -------------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        with LocalStack._active_lock:
            if LocalStack._active is not None:
                raise LocalStackError("another LocalStack is already running in this process")
            LocalStack._active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.utils import TMP_THREADS

        self._set_environment()
        self.template = tpl.build(self.template_path, self.parameters, self.region)
        self._check_patterns()
        self.server.start()
        self.server.reset()
        self.endpoint_url = self.server.url
        self._threads_before = len(TMP_THREADS)
        self._patch = mock.patch.object(LambdaSimpleBackend, "invoke", self._lambda_invoke_method())
        self._patch.start()
        self._make_clients({"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"})
        cloudformation = self._deployable(self.template.cloudformation)
        self._deploy(cloudformation)
        self._create_state_machines()
        self._fill_buckets()
        self._route_rules()
        self._subscribe_topics()
        self._create_admin()
        functions = self._deployed_functions()
        self._assume_roles(functions)
        self.server.role_credentials = self._credentials_of
        self._iam = iam_gate.install(enforce=True)
        self._make_clients(self.admin_credentials)
        self._start_runtime(functions)
        if self.auto_pump:
            self._pump_thread = threading.Thread(
                target=self._pump_forever, name="local-stack-pump", daemon=True
            )
            self._pump_thread.start()

    def stop(self) -> None:
        self._stopping.set()
        try:
            if self._pump_thread is not None:
                self._pump_thread.join(timeout=_SHUTDOWN_SECONDS)
                self._pump_thread = None
            self._stop_executions()
        finally:
            if self.runtime is not None:
                self.runtime.stop()
            if self._patch is not None:
                self._patch.stop()
                self._patch = None
            if self._iam is not None:
                self._iam.uninstall()
                self._iam = None
            self.server.stop()
            self._restore_environment()
            with LocalStack._active_lock:
                if LocalStack._active is self:
                    LocalStack._active = None

    def _set_environment(self) -> None:
        values: dict[str, str | None] = {"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}
        values.update({name: None for name in CLEARED_ENVIRONMENT})
        self._saved_environment = {name: os.environ.get(name) for name in values}
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}

    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        """A boto3 client of the local server (the stack's admin identity unless ``credentials``)."""
        if self._session is None:
            self._session = sessions.session(self.region)
        return self._session.client(
            service,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
            **(credentials or self.admin_credentials),
        )

    def _make_clients(self, credentials: dict[str, str]) -> None:
        def make(service: str) -> Any:
            return self.client(service, credentials)

        self.s3 = make("s3")
        self.sfn = make("stepfunctions")
        self.sqs = make("sqs")
        self.sns = make("sns")
        self.events = make("events")
        self.secrets = make("secretsmanager")
        self.dynamodb = make("dynamodb")
        self.cloudformation = make("cloudformation")
        self.lambda_ = make("lambda")
        self.iam = make("iam")
        self.sts = make("sts")
        self.account_id = self.sts.get_caller_identity()["Account"]

    # -- identities ---------------------------------------------------------------------------------------
    def _create_admin(self) -> None:
        """The stack's own identity (and the one ``serve`` prints): an IAM user allowed everything."""
        self.iam.create_user(UserName=ADMIN_USER)
        self.iam.put_user_policy(
            UserName=ADMIN_USER,
            PolicyName="LocalStackAdministrator",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = self.iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        self.admin_credentials = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
        }
        self.admin_arn = f"arn:aws:iam::{self.account_id}:user/{ADMIN_USER}"

    def _assume(self, role_arn: str, session_name: str) -> dict[str, str]:
        answer = self.sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
        return {
            "aws_access_key_id": answer["AccessKeyId"],
            "aws_secret_access_key": answer["SecretAccessKey"],
            "aws_session_token": answer["SessionToken"],
        }

    def _assume_roles(self, functions: list[DeployedFunction]) -> None:
        """A session of every role the stack acts as (taken before IAM is enforced: the roles trust
        services, not users)."""
        roles = {function.role_arn: function.name for function in functions if function.role_arn}
        for machine in self._pending_machines.values():
            roles.setdefault(machine.role_arn(self._outputs), machine.name)
        for targets in self.rule_targets.values():
            for target in targets:
                if target.get("RoleArn"):
                    roles.setdefault(target["RoleArn"], target.get("Id", "rule"))
        for role_arn, session in roles.items():
            if role_arn:
                self._role_credentials[role_arn] = self._assume(
                    role_arn, re.sub(r"[^\w+=,.@-]", "-", session)
                )

    def _credentials_of(self, role_arn: str) -> dict[str, str]:
        try:
            return self._role_credentials[role_arn]
        except KeyError:
            raise LocalStackError(f"no session of role {role_arn}: the template does not give it") from None

    # -- seams for EventBridge's own rules -----------------------------------------------------------------
    def _check_patterns(self) -> None:
        """Refuse to start when a rule's event pattern is one EventBridge itself would reject."""
        assert self.template is not None
        try:
            event_rules = importlib.import_module("p1_retrain.local.event_rules")
        except ModuleNotFoundError as exc:
            if exc.name != "p1_retrain.local.event_rules":
                raise
            return  # no checker of EventBridge's rules installed: moto's leniency applies

        for logical_id, resource in self.template.resources_of_type("AWS::Events::Rule").items():
            pattern = resource.get("Properties", {}).get("EventPattern")
            if pattern is None:
                continue
            try:
                event_rules.validate_pattern(_literal_pattern(pattern))
            except event_rules.InvalidEventPattern as exc:
                raise LocalStackError(
                    f"{self.template_path.name}: rule {logical_id} has an event pattern "
                    f"EventBridge rejects: {exc}"
                ) from exc

    def _rewrite_s3_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as S3 sends it to EventBridge: moto's carry a one-second ``time``, a constant
        ``sequencer`` and ``eTag``; ``S3EventRewriter`` gives millisecond times, per-key increasing
        sequencers and ``etag``, and rewrites a redelivered event identically."""
        return self._s3_events.rewrite(event)

    # -- deployment -----------------------------------------------------------------------------------------
    def _pseudo_parameters(self) -> dict[str, Any]:
        assert self.template is not None
        values: dict[str, Any] = {
            name: spec.get("Default") for name, spec in self.template.parameters.items() if "Default" in spec
        }
        values.update(self.parameters)
        values.update(
            {
                "AWS::AccountId": self.account_id,
                "AWS::Region": self.region,
                "AWS::StackName": STACK_NAME,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::NoValue": None,
            }
        )
        return values

    def _deployable(self, cloudformation: dict[str, Any]) -> dict[str, Any]:
        """Split the document: moto's CloudFormation deploys what it supports; the secret and the state
        machines (moto keeps CloudFormation's state machines apart from the ones it executes) are named
        now, referenced by literal ARNs, and created directly; anything else moto skips is left out."""
        from moto.cloudformation.parsing import NULL_MODELS, get_model_map

        supported = set(get_model_map()) - set(NULL_MODELS) - {tpl.STATE_MACHINE}
        document = json.loads(json.dumps(cloudformation))
        resources: dict[str, Any] = document["Resources"]
        self.s3.create_bucket(Bucket=tpl.ARTIFACT_BUCKET)
        for name in self.template.layers if self.template else []:
            self.s3.put_object(Bucket=tpl.ARTIFACT_BUCKET, Key=f"{name}.zip", Body=_empty_zip())
        outputs = document.setdefault("Outputs", {})
        literals: dict[str, dict[str, str]] = {}
        for name, resource in list(resources.items()):
            resource_type = resource.get("Type", "")
            properties = resource.get("Properties", {})
            if resource_type == tpl.SECRET_TYPE:
                arn = self._create_secret(name, properties)
                literals[name] = {"Ref": arn, "Id": arn}
            elif resource_type == tpl.STATE_MACHINE:
                machine = self._name_state_machine(name, properties)
                literals[name] = {"Ref": machine.arn, "Arn": machine.arn, "Name": machine.name}
                outputs.update(machine.outputs())
            elif resource_type not in supported and not resource_type.startswith("Custom::"):
                self.skipped_resources[name] = resource_type
            else:
                continue
            del resources[name]
        removed = set(literals) | set(self.skipped_resources)
        for resource in resources.values():
            depends = resource.get("DependsOn")
            depends = [depends] if isinstance(depends, str) else depends
            if depends:
                kept = [item for item in depends if item not in removed]
                if kept:
                    resource["DependsOn"] = kept
                else:
                    resource.pop("DependsOn")
        document = tpl.replace_refs(document, literals)
        for name, output in list(outputs.items()):
            if _references(output, set(self.skipped_resources)):
                del outputs[name]  # informational only; the resource it names is not there
        dangling = _references(document, set(self.skipped_resources))
        if dangling:
            raise LocalStackError(
                "the local stack cannot provide "
                + ", ".join(f"{name} ({self.skipped_resources[name]})" for name in sorted(dangling))
                + ", which other resources reference"
            )
        return document

    def _create_secret(self, logical_id: str, properties: dict[str, Any]) -> str:
        name = properties.get("Name")
        name = evaluate(name, self._pseudo_parameters()) if name else _physical_name(logical_id)
        value: dict[str, Any] = {}
        for model, entry in self.api_keys.items():
            if isinstance(entry, dict):
                value[model] = dict(entry)
            else:
                value[model] = {"api_key": entry, "auto_switch": True} if self.auto_switch else entry
        arn = self.secrets.create_secret(Name=str(name), SecretString=json.dumps(value))["ARN"]
        self.secret_arn = arn
        self.resources[logical_id] = arn
        return arn

    def _name_state_machine(self, logical_id: str, properties: dict[str, Any]) -> _PendingStateMachine:
        assert self.template is not None
        if logical_id not in self.template.state_machines:
            raise LocalStackError(
                f"state machine {logical_id}: only AWS::Serverless::StateMachine is supported"
            )
        name = properties.get("StateMachineName")
        name = str(evaluate(name, self._pseudo_parameters())) if name else _physical_name(logical_id)
        arn = f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{name}"
        machine = _PendingStateMachine(logical_id, name, arn, properties)
        self._pending_machines[logical_id] = machine
        return machine

    def _deploy(self, document: dict[str, Any]) -> None:
        declared = document.get("Parameters", {})
        parameters = [
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in self.parameters.items()
            if key in declared
        ]
        try:
            with warnings.catch_warnings():
                # moto warns about each resource type it skips; self.skipped_resources lists them.
                warnings.simplefilter("ignore")
                self.cloudformation.create_stack(
                    StackName=STACK_NAME,
                    TemplateBody=json.dumps(document),
                    Parameters=parameters,
                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
                )
        except ClientError as exc:
            raise LocalStackError(f"deploying {self.template_path.name} failed: {exc}") from exc
        stack = self.cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise LocalStackError(
                f"deploying {self.template_path.name} ended in {stack['StackStatus']}: "
                f"{stack.get('StackStatusReason', 'no reason given')}"
            )
        self._outputs = {item["OutputKey"]: item.get("OutputValue") for item in stack.get("Outputs", [])}
        paginator = self.cloudformation.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=STACK_NAME):
            for item in page["StackResourceSummaries"]:
                if item.get("PhysicalResourceId"):
                    self.resources[item["LogicalResourceId"]] = item["PhysicalResourceId"]

    def _create_state_machines(self) -> None:
        """Create each state machine from its real ASL file, with ``DefinitionSubstitutions`` and role
        evaluated by CloudFormation itself (as stack outputs)."""
        assert self.template is not None
        for logical_id, machine in self._pending_machines.items():
            source = self.template.state_machines[logical_id]
            values = machine.substitutions(self._outputs)
            definition = tpl.render_definition(logical_id, source.definition, values)
            try:
                created = self.sfn.create_state_machine(
                    name=machine.name,
                    definition=definition,
                    roleArn=machine.role_arn(self._outputs),
                    type=machine.properties.get("StateMachineType", "STANDARD"),
                )
            except ClientError as exc:
                raise LocalStackError(f"state machine {logical_id}: {exc}") from exc
            self.state_machines[logical_id] = created["stateMachineArn"]
            self.resources[logical_id] = created["stateMachineArn"]

    def _fill_buckets(self) -> None:
        """Apply the bucket settings moto's CloudFormation skips and the pipeline depends on: versioning
        (version ids key the idempotency records) and EventBridge notifications (they start everything)."""
        assert self.template is not None
        enabled: list[str] = []
        for logical_id, resource in self.template.resources_of_type(tpl.BUCKET).items():
            name = self.resources.get(logical_id)
            if not name:
                continue
            self.buckets[logical_id] = name
            properties = resource.get("Properties", {})
            refs = self._pseudo_parameters()
            status = evaluate(properties.get("VersioningConfiguration", {}), refs).get("Status")
            if status:
                self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
            notification = properties.get("NotificationConfiguration", {})
            eventbridge = evaluate(notification.get("EventBridgeConfiguration", {}), refs)
            if eventbridge.get("EventBridgeEnabled") in (True, "true"):
                self.s3.put_bucket_notification_configuration(
                    Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
                enabled.append(name)
        if len(enabled) == 1:
            self.bucket = enabled[0]
        elif len(self.buckets) == 1:
            self.bucket = next(iter(self.buckets.values()))

    def _route_rules(self) -> None:
        """Replace each rule's Step Functions target by an SQS queue: the rule keeps its pattern (moto
        evaluates it), and :meth:`pump_events` starts the state machine the target named. moto cannot
        deliver to Step Functions and stops delivering to every later target and rule when it meets
        one, so the original targets are kept in ``self.rule_targets`` instead of on the rule."""
        assert self.template is not None
        for logical_id, resource in self.template.resources_of_type("AWS::Events::Rule").items():
            rule = self.resources.get(logical_id)
            if not rule:
                continue
            bus = resource.get("Properties", {}).get("EventBusName", "default")
            bus = bus if isinstance(bus, str) else "default"
            targets = self.events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
            for target in [target for target in targets if target["Arn"].startswith("arn:aws:states:")]:
                for unsupported in ("Input", "InputPath", "InputTransformer"):
                    if unsupported in target:
                        raise LocalStackError(
                            f"rule {logical_id}: the local stack does not apply {unsupported}"
                        )
                index = len(self.event_queues)
                url = self.sqs.create_queue(QueueName=f"{STACK_NAME}-events-{index}")["QueueUrl"]
                queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
                self.events.remove_targets(Rule=rule, EventBusName=bus, Ids=[target["Id"]])
                self.events.put_targets(
                    Rule=rule,
                    EventBusName=bus,
                    Targets=[{"Id": f"{EVENT_TARGET_ID}{index}", "Arn": queue_arn["Attributes"]["QueueArn"]}],
                )
                self.event_queues[url] = target["Arn"]
                self._queue_targets[url] = target
                self.rule_targets.setdefault(logical_id, []).append(target)

    def _subscribe_topics(self) -> None:
        assert self.template is not None
        for logical_id in self.template.resources_of_type("AWS::SNS::Topic"):
            topic_arn = self.resources.get(logical_id)
            if not topic_arn:
                continue
            url = self.sqs.create_queue(QueueName=f"{STACK_NAME}-notifications-{logical_id}"[:80])["QueueUrl"]
            queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            self.sns.subscribe(
                TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
            )
            self._notification_queues[url] = topic_arn

    def _deployed_functions(self) -> list[DeployedFunction]:
        assert self.template is not None
        functions: list[DeployedFunction] = []
        for logical_id, source in self.template.functions.items():
            name = self.resources.get(logical_id)
            if not name:
                raise LocalStackError(f"function {logical_id} was not deployed")
            config = self.lambda_.get_function_configuration(FunctionName=name)
            environment = {
                key: str(value) for key, value in config.get("Environment", {}).get("Variables", {}).items()
            }
            environment.update(_runtime_environment(config, self.region))
            overrides = self.function_overrides.get(logical_id, {})
            environment.update({key: str(value) for key, value in overrides.get("Environment", {}).items()})
            functions.append(
                DeployedFunction(
                    name=name,
                    arn=config["FunctionArn"],
                    source=source,
                    environment=environment,
                    timeout_seconds=float(overrides.get("Timeout", config.get("Timeout") or 3)),
                    memory_mb=int(overrides.get("MemorySize", config.get("MemorySize") or 128)),
                    role_arn=config.get("Role", ""),
                )
            )
        unknown = sorted(set(self.function_overrides) - set(self.template.functions))
        if unknown:
            raise LocalStackError(
                f"function_overrides name no function of the template: {', '.join(unknown)}"
            )
        return functions

    def _start_runtime(self, functions: list[DeployedFunction]) -> None:
        assert self.template is not None
        credentials = {}
        for function in functions:
            if function.role_arn not in self._role_credentials:
                raise LocalStackError(f"function {function.name} has no role the stack could assume")
            credentials[function.name] = self._role_credentials[function.role_arn]
        self.runtime = LambdaRuntime(
            functions, self.endpoint_url, self.region, credentials, self.template.layer_folders()
        )
        self.runtime.prepare()

    def _lambda_invoke_method(self):
        stack = self

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            runtime = stack.runtime
            function = runtime.resolve(function_name) if runtime else None
            if function is None or runtime is None:
                raise LocalStackError(f"no function {function_name} in {stack.template_path.name}")
            invocation = runtime.invoke(function, body)
            if invocation.error:
                response_headers["x-amz-function-error"] = invocation.error
            response_headers["x-amz-executed-version"] = qualifier or "$LATEST"
            return invocation.payload

        return invoke

    # -- driving ------------------------------------------------------------------------------------------
    def put_object(self, key: str, body: bytes | str | Path) -> str | None:
        """Put ``body`` (bytes, or the path of a file to upload) at ``key`` in the stack's bucket."""
        if not self.bucket:
            raise LocalStackError(f"{self.template_path.name} has no bucket with EventBridge notifications")
        if isinstance(body, (str, Path)):
            with Path(body).open("rb") as handle:
                answer = self.s3.put_object(Bucket=self.bucket, Key=key, Body=handle)
        else:
            answer = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return answer.get("VersionId")

    def pump_events(self) -> list[str]:
        """Start an execution for every event the template's rules delivered, as the rule's role; return
        their ARNs. An event the role may not deliver goes to the rule's dead-letter queue (and
        ``undelivered``), as EventBridge does once its retries are spent."""
        from retrain_pipeline.naming import execution_name

        started: list[str] = []
        with self._pump_lock:
            for url, machine_arn in self.event_queues.items():
                target = self._queue_targets.get(url, {})
                while True:
                    answer = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
                    messages = answer.get("Messages", [])
                    if not messages:
                        break
                    for message in messages:
                        event = self._rewrite_s3_event(json.loads(message["Body"]))
                        body = json.dumps(event)
                        bucket, key, version = source_of(event)
                        name = execution_name(bucket, key, version or object_etag(event))
                        try:
                            arn = self._start_execution(machine_arn, name, body, target.get("RoleArn"))
                        except ClientError as exc:
                            self._dead_letter(target, body, exc)
                        else:
                            self._track(arn, name, machine_arn, key, version)
                            started.append(arn)
                        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return started

    def _pump_forever(self) -> None:
        while not self._stopping.wait(_PUMP_SECONDS):
            try:
                self.pump_events()
            except Exception as exc:  # noqa: BLE001 - the pump keeps going; the next round retries
                self.undelivered.append({"error": type(exc).__name__, "message": str(exc)})

    def _dead_letter(self, target: dict[str, Any], body: str, exc: ClientError) -> None:
        error = exc.response.get("Error", {})
        record = {"target": target.get("Arn"), "error": error.get("Code"), "message": error.get("Message")}
        self.undelivered.append(record)
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            return
        url = self.sqs.get_queue_url(QueueName=queue_arn.split(":")[-1])["QueueUrl"]
        attributes = {
            name: {"DataType": "String", "StringValue": str(value)}
            for name, value in (("ERROR_CODE", error.get("Code")), ("ERROR_MESSAGE", error.get("Message")))
            if value
        }
        self.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)

    def _start_execution(self, machine_arn: str, name: str, body: str, role_arn: str | None = None) -> str:
        sfn = self.sfn
        if role_arn:
            if role_arn not in self._role_clients:
                self._role_clients[role_arn] = self.client("stepfunctions", self._credentials_of(role_arn))
            sfn = self._role_clients[role_arn]
        try:
            answer = sfn.start_execution(stateMachineArn=machine_arn, name=name, input=body)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            return machine_arn.replace(":stateMachine:", ":execution:") + ":" + name
        return answer["executionArn"]

    def start_execution(self, state_machine: str, payload: dict[str, Any], name: str | None = None) -> str:
        """Start ``state_machine`` (logical id or ARN) directly, as an operator or a replay would."""
        arn = self.state_machines.get(state_machine, state_machine)
        name = name or uuid.uuid4().hex
        body = json.dumps(payload)
        execution_arn = self._start_execution(arn, name, body)
        _, key, version = source_of(payload)
        self._track(execution_arn, name, arn, key, version)
        return execution_arn

    def _track(self, arn: str, name: str, machine_arn: str, key: str | None, version: str | None) -> None:
        with self._runs_lock:
            if arn not in self._runs:
                self._runs[arn] = Run(arn, name, machine_arn, key, version, "RUNNING")

    def runs(self) -> list[Run]:
        """Every execution this stack started, in start order, as last observed."""
        with self._runs_lock:
            return list(self._runs.values())

    def refresh(self, arn: str) -> Run:
        """Observe one execution now (reads history once it has finished)."""
        with self._runs_lock:
            run = self._runs[arn]
        if run.finished:
            return run
        described = self.sfn.describe_execution(executionArn=arn)
        status = described["status"]
        run = replace(run, status=status)
        if status in FINISHED:
            history = self.execution_history(arn)
            error, cause = failure_details(history) if status != "SUCCEEDED" else (None, None)
            state = final_state(status, described.get("output"), history)
            run = replace(run, state=state, error=error, cause=cause)
        with self._runs_lock:
            self._runs[arn] = run
        return run

    def wait_all(self, timeout: float) -> list[Run]:
        """Start executions for pending events and wait (at most ``timeout`` s) until all have finished."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump_events()
            runs = [self.refresh(run.execution_arn) for run in self.runs()]
            running = [run for run in runs if not run.finished]
            if not running:
                return runs
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                names = ", ".join(run.key or run.name for run in running)
                raise TimeoutError(f"{len(running)} execution(s) still running after {timeout:g} s: {names}")
            self._wake.wait(min(_EXECUTION_POLL_SECONDS, remaining))

    def executions(self) -> list[dict[str, Any]]:
        """Every execution of every state machine of the stack, as Step Functions lists them."""
        items: list[dict[str, Any]] = []
        paginator = self.sfn.get_paginator("list_executions")
        for arn in self.state_machines.values():
            for page in paginator.paginate(stateMachineArn=arn):
                items.extend(page["executions"])
        return items

    def execution_history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            events.extend(page["events"])
        return events

    def _stop_executions(self) -> None:
        """Abort what still runs and wait for the execution threads, so none outlives the server."""
        if not self.state_machines or not self.admin_credentials:
            return
        from moto.stepfunctions.parser.utils import TMP_THREADS

        for item in self.executions() if self.state_machines else []:
            if item["status"] == "RUNNING":
                try:
                    self.sfn.stop_execution(executionArn=item["executionArn"], cause="local stack stopped")
                except ClientError:
                    continue  # it finished in the meantime
        deadline = time.monotonic() + _SHUTDOWN_SECONDS
        for thread in list(TMP_THREADS[self._threads_before :]):
            thread.join(max(0.0, deadline - time.monotonic()))
        del TMP_THREADS[self._threads_before :]

    # -- reading --------------------------------------------------------------------------------------------
    def read_object(self, key: str, version_id: str | None = None) -> bytes:
        arguments = {"Bucket": self.bucket, "Key": key}
        if version_id:
            arguments["VersionId"] = version_id
        return self.s3.get_object(**arguments)["Body"].read()

    def list_keys(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def logs(self) -> list[str]:
        """Every line the handlers wrote (Powertools logs, metrics, prints, the API client's HTTP log)."""
        return [line.text for line in self.log_lines()]

    def log_lines(self) -> list[LogLine]:
        return self.runtime.lines() if self.runtime is not None else []

    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS message published to the stack's topics so far: ``{"topic_arn", "subject", "message"}``
        (``message`` parsed when it is JSON)."""
        for url, topic_arn in self._notification_queues.items():
            while True:
                messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    envelope = json.loads(message["Body"])
                    text = envelope.get("Message", "")
                    try:
                        parsed: Any = json.loads(text)
                    except json.JSONDecodeError:
                        parsed = text
                    self._notifications.append(
                        {"topic_arn": topic_arn, "subject": envelope.get("Subject"), "message": parsed}
                    )
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return list(self._notifications)


def _runtime_environment(config: dict[str, Any], region: str) -> dict[str, str]:
    """Variables the Lambda runtime itself sets that the handlers' libraries read. Not
    ``LAMBDA_TASK_ROOT``: Powertools Tracer takes it as the sign to send X-Ray segments, and no X-Ray
    daemon runs here."""
    values = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    if config.get("Runtime"):
        values["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{config['Runtime']}"
    return values


class _PendingStateMachine:
    """A state machine named before deployment, created after it."""

    def __init__(self, logical_id: str, name: str, arn: str, properties: dict[str, Any]) -> None:
        self.logical_id = logical_id
        self.name = name
        self.arn = arn
        self.properties = properties
        self._names = list(properties.get("DefinitionSubstitutions", {}))

    def _output(self, index: int | str) -> str:
        return f"LocalStateMachine{self.logical_id}{index}"

    def outputs(self) -> dict[str, Any]:
        """Stack outputs that make CloudFormation evaluate the role and every substitution."""
        values = {self._output("Role"): {"Value": self.properties.get("RoleArn", "")}}
        substitutions = self.properties.get("DefinitionSubstitutions", {})
        for index, name in enumerate(self._names):
            values[self._output(index)] = {"Value": substitutions[name]}
        return values

    def substitutions(self, outputs: dict[str, str | None]) -> dict[str, str]:
        return {name: str(outputs.get(self._output(index))) for index, name in enumerate(self._names)}

    def role_arn(self, outputs: dict[str, str | None]) -> str:
        return str(outputs.get(self._output("Role")) or "")


def _physical_name(logical_id: str) -> str:
    """A name shaped like CloudFormation's generated ones."""
    suffix = uuid.uuid4().hex[:12].upper()
    return f"{STACK_NAME}-{logical_id}"[: 80 - 13] + f"-{suffix}"


def _references(node: Any, names: set[str]) -> set[str]:
    """Logical ids among ``names`` that ``node`` refers to (Ref, GetAtt, ${} in Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _references(item, names)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and value in names:
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                if target in names:
                    found.add(target)
            else:
                found |= _references(value, names)
    elif isinstance(node, str):
        found |= {name.split(".")[0] for name in placeholders(node)} & names
    return found


def _empty_zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()


def _literal_pattern(node: Any) -> Any:
    """An event pattern with CloudFormation intrinsics (``Ref`` of the bucket, ...) replaced by a literal
    string: what is checked is the pattern's shape."""
    if isinstance(node, list):
        return [_literal_pattern(item) for item in node]
    if isinstance(node, dict):
        if len(node) == 1 and (next(iter(node)) == "Ref" or next(iter(node)).startswith("Fn::")):
            return "resolved-at-deployment"
        return {key: _literal_pattern(value) for key, value in node.items()}
    return node
