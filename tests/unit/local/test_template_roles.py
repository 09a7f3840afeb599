"""The real handlers, each run as its own role from the template, behind the IAM gate (moto + the emulator).

With the template as it is, the retrain (with switch), the failure record and the training watch all go
through. With any one statement a function needs removed (``template_policies.needed_statements``), the
function's step fails with AWS's AccessDenied naming the action: the function half of the mutation test,
which runs here without the local stack (the state machine and rule roles are checked offline, their
calls being made by the local stack itself).
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from retrain_pipeline import aws, idempotency

from p1_retrain.local import iam_gate
from p1_retrain.local import template as tpl
from p1_retrain.local.iam_gate import template_policies as tp
from tests.fakes import FakeContext
from tests.testdata import FUNCTIONS, object_created_event, table

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "strict-data"
TABLE = "strict-state"
MODEL = "demo"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
SAM = tpl.load_template(ROOT / "template.yaml")


def sample_csv() -> bytes:
    return table(120, header="abc", cell=lambda row, column: row * (column + 1))


class Strict:
    """moto with the template's function roles, each function's credentials as Lambda gets them."""

    def __init__(self, emulator: Any, load_app: Any) -> None:
        self.emulator = emulator
        self.load_app = load_app
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="operator")
        everything = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="operator", PolicyName="all", PolicyDocument=json.dumps(everything))
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        operator = boto3.session.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=REGION,
        )
        self.s3 = operator.client("s3")  # the test's own reads and writes, as an administrator would
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="strict/api-keys", SecretString=json.dumps({MODEL: emulator.models[MODEL]})
        )
        self.secret_arn = secret["ARN"]
        self.iam = boto3.client("iam", region_name=REGION)
        self.roles: dict[str, str] = {}  # role logical id -> role name
        self.credentials: dict[str, dict[str, str]] = {}
        self._sequencer = itertools.count(1)
        self.env = {
            "DATA_BUCKET": BUCKET,
            "SECRET_ID": self.secret_arn,
            "STATE_TABLE": TABLE,
            "SECRET_MAX_AGE_SECONDS": "0",
        }

    def values(self, cfn: dict[str, Any]) -> dict[str, dict[str, str]]:
        values = tp.placeholder_values(cfn)
        values["DataBucket"] = {"Ref": BUCKET, "Arn": f"arn:aws:s3:::{BUCKET}"}
        values["StateTable"] = {"Ref": TABLE, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"}
        values["ApiKeysSecret"] = {"Ref": self.secret_arn, "Id": self.secret_arn}
        return values

    def deploy(self, sam: dict[str, Any]) -> None:
        """Give every function role exactly the inline policies ``sam`` gives it."""
        from moto.iam.models import iam_backends

        backend = iam_backends[ACCOUNT]["aws"]
        cfn = tp.translate(sam, ROOT)
        documents = tp.role_documents(cfn, self.values(cfn))
        for function in FUNCTIONS:
            role = tp.role_of(cfn, function)
            if role not in self.roles:
                name = f"strict-{role}"
                self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
                self.roles[role] = name
                arn = f"arn:aws:iam::{ACCOUNT}:role/{name}"
                self.credentials[function] = iam_gate.service_credentials(arn, session_name=function)
            name = self.roles[role]
            for policy_name in backend.list_role_policies(name):
                backend.delete_role_policy(name, policy_name)
            for document in documents[role]:
                if not document.name.startswith("arn:"):  # the managed ones grant logs and X-Ray only
                    # SAM writes no Version (IAM then assumes 2008-10-17); moto's validator insists on one.
                    body = {"Version": "2012-10-17", **document.document}
                    backend.put_role_policy(name, document.name, json.dumps(body))

    @contextmanager
    def as_function(self, function: str) -> Iterator[None]:
        """The process environment of ``function``: its role's credentials, fresh clients and caches."""
        credentials = self.credentials[function]
        values = {
            **self.env,
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"],
        }
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        self._fresh()
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            self._fresh()

    @staticmethod
    def _fresh() -> None:
        boto3.setup_default_session(region_name=REGION)
        parameters.clear_caches()
        aws.aws_client.cache_clear()
        idempotency.persistence.cache_clear()

    def run(self, function: str, event: dict[str, Any]) -> Any:
        with self.as_function(function):
            return self.load_app(FUNCTIONS[function]).lambda_handler(event, FakeContext())

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        answer = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        etag = answer["ETag"].strip('"')
        return object_created_event(BUCKET, key, len(body), etag, answer["VersionId"], next(self._sequencer))

    # The workflows, step by step, as the state machines pass their state.

    def retrain(self, until: str = "SwitchModelFunction") -> dict[str, Any]:
        execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:retrain:{uuid.uuid4().hex}"
        # "+" URL-decodes to a space: Upload lists which form of the key exists (s3:ListBucket).
        event = self.put(f"incoming/{MODEL}/{uuid.uuid4().hex[:8]}+1.csv", sample_csv())
        state = self.run("UploadFunction", {"event": event, "execution_id": execution})
        if until == "UploadFunction":
            return state
        self.emulator.admin.wait_job(
            state["job"]["retrain_job_id"], ["job_finished", "job_failed"], timeout=30
        )
        state["poll"] = self.run("CheckStatusFunction", {"job": state["job"], "poll": state["poll"]})
        if until == "CheckStatusFunction":
            return state
        arguments = {name: state[name] for name in ("source", "job", "poll", "execution_id")}
        state["archive"] = self.run("ArchiveFunction", arguments)
        if until == "ArchiveFunction":
            return state
        state["switch"] = self.run("SwitchModelFunction", state)
        return state

    def failure(self) -> dict[str, Any]:
        event = self.put(f"incoming/{MODEL}/{uuid.uuid4().hex[:8]}-empty.csv", b"")
        cause = {"errorMessage": "the object is empty", "errorType": "EmptyObject"}
        state = {
            **event,
            "error": {"Error": "EmptyObject", "Cause": json.dumps(cause)},
            "failed_step": "Upload",
        }
        execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:retrain:{uuid.uuid4().hex}"
        return self.run("RecordFailureFunction", {"state": state, "execution_id": execution})

    def training(self, until: str = "ArchiveTrainingFunction") -> dict[str, Any]:
        process_id = self.emulator.admin.create_training(MODEL, seconds=0, outcome="finished")
        event = self.put(
            f"training/{MODEL}/{uuid.uuid4().hex[:8]}+1.json",
            json.dumps({"external_process_id": process_id}).encode(),
        )
        execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:watch:{uuid.uuid4().hex}"
        state = self.run("StartWatchFunction", {"request": event, "execution_id": execution})
        if until == "StartWatchFunction":
            return state
        for attempt in range(3):
            if state["poll"]["state"] != "running" and (attempt or until != "CheckTrainingFunction"):
                break
            state["poll"] = self.run(
                "CheckTrainingFunction", {"training": state["training"], "poll": state["poll"]}
            )
        if until == "CheckTrainingFunction":
            return state
        arguments = {name: state[name] for name in ("source", "training", "poll", "execution_id")}
        state["archive"] = self.run("ArchiveTrainingFunction", arguments)
        return state


@pytest.fixture(scope="module")
def strict() -> Iterator[Strict]:
    from p1_retrain.emulator import EmulatorServer

    env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bootstrap",
        "AWS_SECRET_ACCESS_KEY": "bootstrap",
        "API_MAX_RETRIES": "1",
        "POLL_INTERVAL_SECONDS": "1",
        "MAX_POLL_INTERVAL_SECONDS": "5",
        "UPLOAD_ATTEMPTS": "1",
        "POWERTOOLS_SERVICE_NAME": "p1-retrain",
        "POWERTOOLS_METRICS_NAMESPACE": "P1RetrainTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    with (
        pytest.MonkeyPatch.context() as patch,
        EmulatorServer(port=0, models={MODEL: uuid.uuid4().hex}, job_seconds=0.05) as emulator,
    ):
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("API_BASE_URL", emulator.base_url)
        for name in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AUTO_SWITCH",
            "ALLOWED_EXTENSIONS",
        ):
            patch.delenv(name, raising=False)
        with mock_aws():
            loader = _loader()
            for app in FUNCTIONS.values():
                loader(app)
            strict = Strict(emulator, loader)
            strict.deploy(SAM)
            with iam_gate.install(enforce=True):
                yield strict
        # Leave no client, cache or default session holding this module's credentials.
        parameters.clear_caches()
        aws.aws_client.cache_clear()
        idempotency.persistence.cache_clear()
        boto3.DEFAULT_SESSION = None


def _loader() -> Any:
    import importlib.util
    import sys

    def load(name: str) -> Any:
        module_name = f"functions_{name}_app"
        if module_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        return sys.modules[module_name]

    return load


def test_the_real_steps_run_as_the_templates_roles(strict: Strict) -> None:
    strict.deploy(SAM)
    state = strict.retrain()
    assert state["switch"]["switched"] is True
    summary = json.loads(
        strict.s3.get_object(Bucket=BUCKET, Key=state["archive"]["summary_key"])["Body"].read()
    )
    assert summary["switched"] is True
    record = strict.failure()
    assert record["error"] == "EmptyObject" and record["failure_key"].startswith(f"failed/{MODEL}/")
    watched = strict.training()
    assert watched["archive"]["result_key"].startswith(f"results/{MODEL}/training/")


FUNCTION_STATEMENTS = [
    item for item in tp.needed_statements(SAM, ROOT) if item.role.removesuffix("Role") in FUNCTIONS
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("role", "index", "statement"),
    [pytest.param(*item, id=f"{item.role}-{item.statement.get('Sid')}") for item in FUNCTION_STATEMENTS],
)
def test_a_function_without_a_needed_statement_is_denied_by_name(
    strict: Strict, role: str, index: int, statement: dict[str, Any]
) -> None:
    function = role.removesuffix("Role")
    actions = {call.action for call in tp.denied_calls(SAM, ROOT, role, index)}
    strict.deploy(tp.remove_statement(SAM, role, index))
    try:
        with pytest.raises(Exception) as caught:
            if function == "RecordFailureFunction":
                strict.failure()
            elif function in ("StartWatchFunction", "CheckTrainingFunction", "ArchiveTrainingFunction"):
                strict.training(until=function)
            else:
                strict.retrain(until=function)
    finally:
        strict.deploy(SAM)
    text = str(caught.value)
    named = sorted(
        action for action in actions if f"is not authorized to perform: {action} on resource: " in text
    )
    assert named, f"{role} without {statement.get('Sid')}: expected one of {sorted(actions)} in {text!r}"
