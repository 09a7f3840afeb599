"""The handlers against moto (S3, DynamoDB, Secrets Manager) and the emulator over real HTTP."""

from __future__ import annotations

import io
import itertools
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from prediction_one import PredictionOneClient
from prediction_one import errors as p1_errors
from retrain_pipeline import aws, idempotency
from retrain_pipeline.handler import telemetry as handler_telemetry

from tests.fakes import FakeContext
from tests.testdata import object_created_event, table, zip_of

REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "retrain-data"
TABLE = "retrain-state"
SECRET_ID = "retrain/api-keys"
SERVICE = "p1-retrain"
FUNCTIONS = ("upload", "check_status", "archive", "switch_model", "record_failure")


def execution_arn(name: str | None = None) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:retrain:{name or uuid.uuid4()}"


def csv_bytes(rows: int = 120, columns: int = 3, seed: int = 0) -> bytes:
    """A table within the product's data limits: 100+ rows, 2+ columns."""
    return table(rows, columns, cell=lambda row, column: row * (column + 1) + seed)


def zip_bytes(names: tuple[str, ...] = ("train_src/train.csv", "eval_src/eval.csv")) -> bytes:
    return zip_of({name: csv_bytes(seed=index) for index, name in enumerate(names)})


class Stack:
    """Moto resources + the emulator + handler invocation with the state machine's input shapes."""

    csv_bytes = staticmethod(csv_bytes)
    zip_bytes = staticmethod(zip_bytes)
    execution_arn = staticmethod(execution_arn)
    bucket = BUCKET
    table = TABLE
    secret_id = SECRET_ID

    def __init__(self, emulator: Any, load_app: Any) -> None:
        self.emulator = emulator
        self.load_app = load_app
        self.s3 = boto3.client("s3", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.secrets = boto3.client("secretsmanager", region_name=REGION)
        self._sequencer = itertools.count(1)
        self.s3.create_bucket(Bucket=BUCKET)
        self.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps({"demo": "demo-key"}))

    # AWS side

    def set_secret(self, value: Any) -> None:
        self.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(value))
        parameters.clear_caches()

    def put(self, key: str, body: bytes, *, time: str | None = None) -> dict[str, Any]:
        """Store an object and return the EventBridge "Object Created" event S3 would send."""
        answer = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return self.event_for(key, len(body), answer["ETag"].strip('"'), answer.get("VersionId"), time=time)

    def event_for(
        self, key: str, size: int, etag: str, version_id: str | None, *, time: str | None = None
    ) -> dict[str, Any]:
        sequencer = next(self._sequencer)
        return object_created_event(BUCKET, key, size, etag, version_id, sequencer, time=time)

    def read_json(self, key: str) -> dict[str, Any]:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        answer = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for item in answer.get("Contents", [])]

    # Handlers, called as the state machine calls them

    def invoke(self, name: str, event: dict[str, Any]) -> Any:
        return self.load_app(name).lambda_handler(event, FakeContext())

    def upload(self, event: dict[str, Any], execution_id: str | None = None) -> dict[str, Any]:
        return self.invoke("upload", {"event": event, "execution_id": execution_id or execution_arn()})

    def check(self, state: dict[str, Any]) -> dict[str, Any]:
        state["poll"] = self.invoke("check_status", {"job": state["job"], "poll": state["poll"]})
        return state

    def wait_finished(self, state: dict[str, Any]) -> dict[str, Any]:
        """Block (on the emulator's condition, bounded) until the job ends, then run CheckStatus once."""
        self.emulator.admin.wait_job(
            state["job"]["retrain_job_id"], ["job_finished", "job_failed"], timeout=30
        )
        return self.check(state)

    def archive(self, state: dict[str, Any]) -> dict[str, Any]:
        state["archive"] = self.invoke(
            "archive",
            {
                "source": state["source"],
                "job": state["job"],
                "poll": state["poll"],
                "execution_id": state["execution_id"],
            },
        )
        return state

    def switch(self, state: dict[str, Any]) -> dict[str, Any]:
        state["switch"] = self.invoke("switch_model", state)
        return state

    def record_failure(self, state: dict[str, Any], execution_id: str | None = None) -> dict[str, Any]:
        return self.invoke(
            "record_failure",
            {"state": state, "execution_id": execution_id or state.get("execution_id", "arn:x")},
        )

    def failed_upload(self, key: str, body: bytes) -> tuple[dict[str, Any], BaseException]:
        """Put ``key`` and run Upload, which must raise: the state RecordFailure then receives (the raw
        event + error + failed_step), and the error."""
        event = self.put(key, body)
        with pytest.raises(Exception) as raised:
            self.upload(event)
        return self.failed_state(event, raised.value, "Upload"), raised.value

    def failed_state(self, state: dict[str, Any], error: BaseException, step: str) -> dict[str, Any]:
        """What a Catch (ResultPath $.error) + <Step>Failed Pass state make of a handler's exception."""
        return self.failed_with(state, type(error).__name__, str(error), step, stackTrace=["..."])

    @staticmethod
    def failed_with(
        state: dict[str, Any], error: str, message: str, step: str, **cause: Any
    ) -> dict[str, Any]:
        """The same for an error the state machine names itself (a Pass state's ``JobFailed``, ...) or a
        handler's error given by name: ``Cause`` is the JSON ``errorType`` and ``errorMessage``, plus
        ``cause``'s fields."""
        body = {"errorType": error, "errorMessage": message, **cause}
        return {**state, "error": {"Error": error, "Cause": json.dumps(body)}, "failed_step": step}


@pytest.fixture
def stack(emulator: Any, load_app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    env = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "API_BASE_URL": emulator.base_url,
        "API_MAX_RETRIES": "1",
        "DATA_BUCKET": BUCKET,
        "SECRET_ID": SECRET_ID,
        "STATE_TABLE": TABLE,
        "POLL_INTERVAL_SECONDS": "1",
        "MAX_POLL_INTERVAL_SECONDS": "5",
        "POWERTOOLS_SERVICE_NAME": SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": "P1RetrainTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AUTO_SWITCH", "ALLOWED_EXTENSIONS", "JOB_DEADLINE_HOURS"):
        monkeypatch.delenv(name, raising=False)
    parameters.clear_caches()
    aws.aws_client.cache_clear()
    idempotency.persistence.cache_clear()
    # Import the handlers now, before capsys/capfd swap sys.stdout: their loggers keep the stream they
    # were created with, and a per-test stream would be closed under every later test.
    for name in FUNCTIONS:
        load_app(name)
    emulator.admin.set_settings(job_seconds=0.05)  # tests that need a running job set a longer one
    with mock_aws():
        yield Stack(emulator, load_app)
    parameters.clear_caches()
    aws.aws_client.cache_clear()
    idempotency.persistence.cache_clear()


@pytest.fixture
def expire_downloads(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], list[str]]:
    """``expire_downloads(times)``: every download URL is refused as expired (emulator fault) until
    ``times`` downloads were refused; returns the refused URLs, a list filled as they are refused."""

    def expire(times: int) -> list[str]:
        real_download = PredictionOneClient.download
        refused: list[str] = []

        def download(self: Any, url: str, writer: Any, chunk_size: int = 8 * 1024 * 1024) -> int:
            try:
                return real_download(self, url, writer, chunk_size)
            except p1_errors.UrlExpired:
                refused.append(url)
                if len(refused) >= times:
                    stack.emulator.admin.clear_faults()
                raise

        monkeypatch.setattr(PredictionOneClient, "download", download)
        stack.emulator.admin.set_faults(rate=1.0, kinds=["expired_url"], endpoints=["download"])
        return refused

    return expire


@pytest.fixture
def logs(load_app: Any) -> Iterator[io.StringIO]:
    """Every log line of handlers, pipeline, client and urllib3 (DEBUG), formatted as in Lambda."""
    load_app("upload")
    logger = handler_telemetry().logger  # the handlers' logger
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    handler.setLevel(logging.DEBUG)
    names = (logger.name, "retrain_pipeline", "prediction_one", "urllib3")
    saved = {}
    for name in names:
        target = logging.getLogger(name)
        saved[name] = target.level
        target.setLevel(logging.DEBUG)
        target.addHandler(handler)
    yield stream
    for name in names:
        target = logging.getLogger(name)
        target.removeHandler(handler)
        target.setLevel(saved[name])


@pytest.fixture
def written(stack: Stack, logs: io.StringIO, capfd: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """``written(state, failure, *more)``: one text of all a run left where a secret could leak: the
    log lines, stdout and stderr so far, the final state, RecordFailure's output, the failure record,
    the summary, and ``more``."""

    def collect(state: dict[str, Any], failure: dict[str, Any], *more: str) -> str:
        captured = capfd.readouterr()
        return "\n".join(
            [
                logs.getvalue(),
                captured.out,
                captured.err,
                json.dumps(state),
                json.dumps(failure),
                json.dumps(stack.read_json(failure["failure_key"])),
                json.dumps(stack.read_json(state["archive"]["summary_key"])),
                *more,
            ]
        )

    return collect
