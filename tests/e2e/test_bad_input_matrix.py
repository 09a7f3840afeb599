"""The bad-input matrix: one row per kind of bad (or awkward) input, end to end on one local stack.

Every independent row is dropped at once; rows that need an emulator behaviour get a model of their own
(per-model settings, credentials, deletions). Each row then asserts what the user sees.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from p1_retrain.emulator import EmulatorServer
from p1_retrain.emulator.faults import FaultInjector, FaultPlan
from p1_retrain.local.data import synthetic_csv
from p1_retrain.local.runs import Run
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack
from tests.e2e.conftest import TEMPLATE
from tests.e2e.matrix_support import (
    RETRAIN_FAILED_SUBJECT,
    everything_written,
    failure_notifications,
    failure_record,
    latest_version,
    leaks,
    wait_for,
)
from tests.testdata import zip_of

pytestmark = pytest.mark.slow  # a fault matrix: many runs on the local stack

JOB_SECONDS = 0.5
# A job still running 10.8 s after its upload is past the deadline (the template's floor is 1 hour).
DEADLINE_HOURS = "0.003"
RUN_TIMEOUT = 120.0
BAD_REQUEST = 4001000204
INTERNAL_ERROR = 5001000201
FAILURE_MESSAGE = "target column 'churn' holds a single value"
LONG_KEY_BYTES = 1000

# Models known to the emulator, each with its own key; "badkey" is only in the secret, "nobody" nowhere.
EMULATOR_MODELS = (
    "plain",
    "inactive",
    "nocred",
    "userdel",
    "modeldel",
    "basejobdel",
    "jobdel",
    "noconfig",
    "jobfail",
    "stuck",
    "versions",
    "expiry",
    "replayed",
    "classifierdel",
    "jobgone",
)
SWITCHING_MODELS = ("versions", "classifierdel", "jobgone")
# While these models' switch gate is held, their job is archived, then the model (or the job) is deleted
# on the Prediction One side and the gate freed: the switch endpoint answers the row
# (see _delete_before_switch).
SWITCH_ROWS = {"classifierdel": "model", "jobgone": "job"}
GATE_HOLDER = "maintenance"


def _zip(entries: dict[str, bytes]) -> bytes:
    return zip_of(entries, zipfile.ZIP_STORED)


def _long_name(prefix: str) -> str:
    filler = LONG_KEY_BYTES - len(prefix.encode()) - len(".csv")
    return "l" * filler + ".csv"


@dataclass(frozen=True)
class Row:
    """One bad (or awkward) input and what the user must see."""

    id: str
    model: str
    name: str
    body: bytes
    status: str  # SUCCEEDED or FAILED
    error: str | None = None
    step: str | None = None
    documented: tuple[str, int] | None = None  # (message, code) of the documented API error row
    says: tuple[str, ...] = ()  # words the failure message must hold
    setup: Callable[[Any], None] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return f"incoming/{self.model}/{self.name}"


def _documented(
    row_id: str, model: str, error: str, step: str, message: str, code: int = BAD_REQUEST, setup=None
):
    return Row(
        row_id, model, "data.csv", synthetic_csv(11), "FAILED", error, step, (message, code), setup=setup
    )


def _base_job(admin, model: str) -> str:
    (entry,) = [item for item in admin.models() if item["name"] == model]
    return entry["base_job_id"]


ROWS = (
    Row("zero-byte-object", "plain", "empty.csv", b"", "FAILED", "EmptyObject", "Upload", says=("empty",)),
    Row(
        "unsupported-extension",
        "plain",
        "notes.txt",
        b"a,b\n1,2\n",
        "FAILED",
        "UnsupportedFileType",
        "Upload",
        says=(".txt",),
    ),
    Row(
        "zip-without-train_src",
        "plain",
        "flat.zip",
        _zip({"train.csv": synthetic_csv(12), "eval_src/eval.csv": synthetic_csv(13)}),
        "FAILED",
        "BadZipLayout",
        "Upload",
        says=("train_src/",),
    ),
    Row(
        "csv-below-a5-row-limit",
        "plain",
        "tiny.csv",
        b"a,b\n1,2\n3,4\n5,6\n",
        "FAILED",
        "JobFailed",
        "CheckStatus",
        says=("at least 100",),
    ),
    Row(
        "model-without-key",
        "nobody",
        "data.csv",
        synthetic_csv(14),
        "FAILED",
        "ModelNotConfigured",
        "Upload",
        says=("nobody",),
    ),
    _documented("invalid_api_key", "badkey", "ApiKeyInvalid", "Upload", "invalid_api_key."),
    _documented(
        "Inactive_credential",
        "inactive",
        "CredentialInactive",
        "Upload",
        "Inactive_credential.",
        setup=lambda ctx: ctx.admin.deactivate_credential(ctx.keys["inactive"]),
    ),
    _documented(
        "Not_found_credential",
        "nocred",
        "CredentialNotFound",
        "Upload",
        "Not_found_credential.",
        setup=lambda ctx: ctx.admin.delete_credential(ctx.keys["nocred"]),
    ),
    _documented(
        "user-deleted",
        "userdel",
        "UserDeleted",
        "Upload",
        "This user may be deleted.",
        setup=lambda ctx: ctx.admin.delete_user("userdel"),
    ),
    _documented(
        "model-deleted",
        "modeldel",
        "ModelDeleted",
        "Upload",
        "This model may be deleted.",
        setup=lambda ctx: ctx.admin.delete_model("modeldel"),
    ),
    _documented(
        "job-deleted-upload-url-endpoint",
        "basejobdel",
        "JobDeleted",
        "Upload",
        "This job may be deleted.",
        setup=lambda ctx: ctx.admin.delete_job(_base_job(ctx.admin, "basejobdel")),
    ),
    # The job is deleted while it runs (see _delete_running_job): the status endpoint answers the row.
    _documented(
        "job-deleted-status-endpoint",
        "jobdel",
        "JobDeleted",
        "CheckStatus",
        "This job may be deleted.",
        setup=lambda ctx: ctx.admin.set_settings(job_seconds=120, model="jobdel"),
    ),
    _documented(
        "Not-found-configuration_file",
        "noconfig",
        "ConfigurationFileNotFound",
        "Upload",
        "Not found configuration_file.",
        INTERNAL_ERROR,
        setup=lambda ctx: ctx.admin.delete_configuration("noconfig"),
    ),
    Row(
        "job_failed-with-message",
        "jobfail",
        "data.csv",
        synthetic_csv(15),
        "FAILED",
        "JobFailed",
        "CheckStatus",
        says=(FAILURE_MESSAGE,),
        setup=lambda ctx: ctx.admin.set_settings(
            outcome="failed", failure_message=FAILURE_MESSAGE, model="jobfail"
        ),
    ),
    Row(
        "job-never-finishes",
        "stuck",
        "data.csv",
        synthetic_csv(16),
        "FAILED",
        "JobDeadlineExceeded",
        "CheckStatus",
        setup=lambda ctx: ctx.admin.set_settings(outcome="never", model="stuck"),
    ),
    _documented(
        "Not-found-classifier-on-switch",
        "classifierdel",
        "ClassifierNotFound",
        "SwitchModel",
        "Not found classifier.",
    ),
    _documented(
        "Not-found-retrain-job-on-switch",
        "jobgone",
        "RetrainJobNotFound",
        "SwitchModel",
        "Not found retrain job.",
    ),
    Row("key-with-spaces", "plain", "with some spaces.csv", synthetic_csv(17), "SUCCEEDED"),
    Row("key-with-plus", "plain", "a+b+c.csv", synthetic_csv(18), "SUCCEEDED"),
    Row("key-with-unicode", "plain", "ünïcødé データ.csv", synthetic_csv(19), "SUCCEEDED"),
    Row("key-1000-bytes", "plain", _long_name("incoming/plain/"), synthetic_csv(20), "SUCCEEDED"),
)
FAILING = [row for row in ROWS if row.status == "FAILED"]
SUCCEEDING = [row for row in ROWS if row.status == "SUCCEEDED"]
# Objects the rules must ignore: folder markers and what the pipeline itself writes.
IGNORED_KEYS = (
    ("folder-marker", "incoming/plain/subfolder/", b""),
    ("model-folder-marker", "incoming/plain/", b""),
    ("written-under-results", "results/plain/0000/retrain_result.csv", synthetic_csv(21)),
    ("written-under-failed", "failed/plain/data.csv.json", b'{"error": "EmptyObject"}'),
)


@dataclass
class Matrix:
    stack: LocalStack
    admin: Any
    keys: dict[str, str]
    versions: dict[str, str | None] = field(default_factory=dict)  # row id -> version id put
    runs: dict[str, Run] = field(default_factory=dict)  # row id -> its execution
    newer: tuple[Run, Run] | None = None  # (first version, second version) of one key
    expired: Run | None = None
    duplicate: tuple[Run, Run] | None = None  # (original, replay)
    faults_applied: dict[str, int] = field(default_factory=dict)

    def run_of(self, key: str, version: str | None) -> Run:
        (run,) = [run for run in self.stack.runs() if (run.key, run.version_id) == (key, version)]
        return self.stack.refresh(run.execution_arn)


def _job_of(admin, model: str, filename: str, statuses: set[str]) -> dict | None:
    for job in admin.jobs():
        if job.get("model") == model and job.get("filename") == filename and job.get("status") in statuses:
            return job
    return None


def _delete_running_job(matrix: Matrix, model: str, filename: str) -> None:
    def running() -> dict | None:
        matrix.stack.pump_events()
        return _job_of(matrix.admin, model, filename, {"job_running"})

    job = wait_for(running, RUN_TIMEOUT, f"a running job of {model}")
    matrix.admin.delete_job(job["id"])


def _put_second_version(matrix: Matrix, key: str) -> tuple[str | None, str | None]:
    """Put ``key`` once, wait until its job runs (and the clock passed the first event's second, the
    ordering key's resolution), put it again: two versions, the first one in flight."""
    stack, model, filename = matrix.stack, key.split("/")[1], key.rsplit("/", 1)[1]
    first = stack.put_object(key, synthetic_csv(30))
    first_modified = stack.s3.head_object(Bucket=stack.bucket, Key=key, VersionId=first)["LastModified"]

    def first_in_flight() -> bool:
        stack.pump_events()
        later = datetime.now(UTC).replace(microsecond=0) > first_modified
        return later and _job_of(matrix.admin, model, filename, {"job_running"}) is not None

    wait_for(first_in_flight, RUN_TIMEOUT, f"the first version of {key} in flight")
    second = stack.put_object(key, synthetic_csv(31))
    return first, second


def _gate_key(model: str) -> dict[str, Any]:
    return {"id": {"S": f"switch#{model}"}}


def _hold_switch_gates(matrix: Matrix) -> None:
    table = matrix.stack.resources["StateTable"]
    for model in SWITCH_ROWS:
        matrix.stack.dynamodb.put_item(
            TableName=table,
            Item={
                **_gate_key(model),
                "holder": {"S": GATE_HOLDER},
                "lease_until": {"N": str(int(datetime.now(UTC).timestamp()) + 600)},
            },
        )


def _delete_before_switch(matrix: Matrix) -> None:
    """Once each gated model's result is archived, delete its model or job, then free its gate."""
    stack, table = matrix.stack, matrix.stack.resources["StateTable"]
    for model, what in SWITCH_ROWS.items():

        def archived(model: str = model) -> dict | None:
            stack.pump_events()
            job = _job_of(matrix.admin, model, "data.csv", {"job_finished"})
            if job and stack.list_keys(f"results/{model}/{job['id']}/summary.json"):
                return job
            return None

        job = wait_for(archived, RUN_TIMEOUT, f"the archived result of {model}")
        if what == "model":
            matrix.admin.delete_model(model)
        else:
            matrix.admin.delete_job(job["id"])
        stack.dynamodb.delete_item(TableName=table, Key=_gate_key(model))


def _expired_then_fresh_seed() -> int:
    """A fault seed whose first download is refused as expired and whose second is served."""
    for seed in range(1000):
        injector = FaultInjector()
        injector.configure(FaultPlan.build(0.5, seed, ["expired_url"], ["download"]))
        if [injector.draw("download"), injector.draw("download")] == ["expired_url", None]:
            return seed
    raise AssertionError("no seed gives an expired then a fresh download")


def _run_alone(matrix: Matrix) -> None:
    """Rows that need the whole emulator: an expired download URL (a global fault, so nothing else may
    download meanwhile) and a second delivery of an event (replayed from a finished execution)."""
    stack, admin = matrix.stack, matrix.admin
    original = matrix.runs["key-with-spaces"]
    event = json.loads(
        stack.execution_history(original.execution_arn)[0]["executionStartedEventDetails"]["input"]
    )
    replay_arn = stack.start_execution("RetrainStateMachine", event, name=f"replay-{secrets.token_hex(4)}")
    key = "incoming/expiry/data.csv"
    counts_before = admin.fault_counts()
    admin.set_faults(rate=0.5, seed=_expired_then_fresh_seed(), kinds=["expired_url"], endpoints=["download"])
    try:
        version = stack.put_object(key, synthetic_csv(40))
        stack.wait_all(RUN_TIMEOUT)
    finally:
        admin.clear_faults()
    counts_after = admin.fault_counts()
    matrix.faults_applied = {
        kind: counts_after.get(kind, 0) - counts_before.get(kind, 0) for kind in counts_after
    }
    matrix.expired = matrix.run_of(key, version)
    matrix.duplicate = (original, stack.refresh(replay_arn))


@pytest.fixture(scope="module")
def matrix() -> Iterator[Matrix]:
    keys = {name: f"{name}-{secrets.token_hex(8)}" for name in EMULATOR_MODELS}
    secret: dict[str, Any] = {
        name: {"api_key": key, "auto_switch": True} if name in SWITCHING_MODELS else key
        for name, key in keys.items()
    }
    secret["badkey"] = f"badkey-{secrets.token_hex(8)}"
    parameters = {
        **FAST_PARAMETERS,
        "JobDeadlineHours": DEADLINE_HOURS,
        "ApiMaxRetries": "1",
        "TaskRetryMaxAttempts": "3",
    }
    with (
        EmulatorServer(port=0, models=keys, job_seconds=JOB_SECONDS) as emulator,
        LocalStack(TEMPLATE, emulator.base_url, secret, parameters) as stack,
    ):
        all_keys = {**keys, "badkey": secret["badkey"]}
        found = Matrix(stack, emulator.admin, all_keys)
        emulator.admin.set_settings(job_seconds=2.0, model="versions")
        _hold_switch_gates(found)
        for row in ROWS:
            if row.setup is not None:
                row.setup(found)
        for row in ROWS:
            found.versions[row.id] = stack.put_object(row.key, row.body)
        for _, key, body in IGNORED_KEYS:
            stack.put_object(key, body)
        _delete_running_job(found, "jobdel", "data.csv")
        _delete_before_switch(found)
        newer_key = "incoming/versions/data.csv"
        first, second = _put_second_version(found, newer_key)
        stack.wait_all(RUN_TIMEOUT)
        found.runs = {row.id: found.run_of(row.key, found.versions[row.id]) for row in ROWS}
        found.newer = (found.run_of(newer_key, first), found.run_of(newer_key, second))
        _run_alone(found)
        yield found


@pytest.mark.parametrize("row", FAILING, ids=[row.id for row in FAILING])
def test_failing_row_tells_the_user_what_went_wrong(matrix, row):
    run = matrix.runs[row.id]
    stack = matrix.stack

    assert run.status == "FAILED", run.state
    assert run.failure["error"] == row.error, run.failure
    assert run.failure["step"] == row.step
    expected_key = f"failed/{row.model}/{row.name}.json"
    assert run.failure["failure_key"] == expected_key
    record = failure_record(stack, expected_key)
    assert record["error"] == row.error
    assert record["step"] == row.step
    assert record["execution_id"] == run.execution_arn
    assert record["source"]["key"] == row.key
    assert record["source"]["version_id"] == matrix.versions[row.id]
    words = json.dumps(record, ensure_ascii=False)
    if row.documented is not None:
        message, code = row.documented
        assert record["documented_error"]["message"] == message
        assert record["documented_error"]["code"] == code
        assert message in words and str(code) in words
    for text in row.says:
        assert text in record["message"], record["message"]
    assert record["advice"]
    (notification,) = failure_notifications(stack, expected_key)
    assert notification["subject"] == RETRAIN_FAILED_SUBJECT
    # A curated message: the file, model, error and advice in plain words, never the state or a Cause.
    message = notification["message"]
    assert message["file"] == f"s3://{stack.bucket}/{row.key}"
    assert (message["model"], message["error"], message["step"]) == (record["model"], row.error, row.step)
    assert message["message"] == record["message"].splitlines()[0][:500] and message["advice"]
    sent = json.dumps(message, ensure_ascii=False)
    for raw in ("Traceback", "stackTrace", "Cause", "errorType", '"detail"', "/var/task"):
        assert raw not in sent, raw
    assert leaks(sent, matrix.keys.values()) == []
    assert latest_version(stack, row.key) == matrix.versions[row.id]
    assert leaks(words, matrix.keys.values()) == []


def test_rows_failing_before_the_api_create_no_job(matrix):
    before_api = [row for row in FAILING if row.step == "Upload" and row.documented is None]
    names = {(row.model, row.name) for row in before_api}

    created = [job for job in matrix.admin.jobs() if (job.get("model"), job.get("filename")) in names]

    assert created == []
    assert {matrix.runs[row.id].retrain_job_id for row in before_api} == {None}


def test_deadline_row_names_the_job_and_its_last_status(matrix):
    run = matrix.runs["job-never-finishes"]
    record = failure_record(matrix.stack, run.failure["failure_key"])

    assert record["retrain_job_id"] == run.retrain_job_id
    assert record["job_status"] == "job_running"
    assert matrix.admin.job(run.retrain_job_id)["status"] == "job_running"


@pytest.mark.parametrize("row", SUCCEEDING, ids=[row.id for row in SUCCEEDING])
def test_awkward_key_is_retrained_under_its_exact_name(matrix, row):
    run = matrix.runs[row.id]

    assert run.status == "SUCCEEDED", run.failure
    assert run.key == row.key
    job = matrix.admin.job(run.retrain_job_id)
    assert job["filename"] == row.name
    assert job["upload_sha256"] == hashlib.sha256(row.body).hexdigest()
    summary = json.loads(matrix.stack.read_object(run.summary_key))
    assert summary["source"]["key"] == row.key
    assert matrix.stack.read_object(run.result_key) == matrix.admin.result_bytes(run.retrain_job_id)


def test_long_key_is_really_1000_bytes():
    (row,) = [row for row in ROWS if row.id == "key-1000-bytes"]

    assert len(row.key.encode()) == LONG_KEY_BYTES


@pytest.mark.parametrize(
    ("label", "key"), [(label, key) for label, key, _ in IGNORED_KEYS], ids=[i[0] for i in IGNORED_KEYS]
)
def test_ignored_object_starts_nothing(matrix, label, key):
    started = [run for run in matrix.stack.runs() if run.key == key]

    assert matrix.stack.list_keys(key) != [], f"{label}: the object was not written"
    assert started == []


def test_expired_download_url_is_fetched_again_and_succeeds(matrix):
    run = matrix.expired

    assert matrix.faults_applied.get("expired_url") == 1
    assert run.status == "SUCCEEDED", run.failure
    assert matrix.stack.read_object(run.result_key) == matrix.admin.result_bytes(run.retrain_job_id)
    downloads = [
        item
        for item in matrix.admin.requests_log()
        if item["endpoint"] == "download" and run.retrain_job_id in item["path"]
    ]
    assert [item["fault"] for item in downloads] == ["expired_url", None]


def test_duplicate_event_ends_in_duplicate_event_with_one_job(matrix):
    original, replay = matrix.duplicate

    assert replay.execution_arn != original.execution_arn
    assert replay.status == "SUCCEEDED"
    assert replay.duplicate is True
    assert replay.retrain_job_id == original.retrain_job_id
    history = matrix.stack.execution_history(replay.execution_arn)
    entered = [
        event["stateEnteredEventDetails"]["name"] for event in history if "stateEnteredEventDetails" in event
    ]
    assert "DuplicateEvent" in entered
    assert "WaitForJob" not in entered
    uploads = [item for item in matrix.admin.uploads() if item["job_id"] == original.retrain_job_id]
    assert len(uploads) == 1


def test_new_version_while_the_first_is_in_flight_gives_two_jobs_switched_in_order(matrix):
    first, second = matrix.newer

    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED"), (first.failure, second.failure)
    assert first.version_id != second.version_id
    assert first.retrain_job_id != second.retrain_job_id
    switched = [item["job_id"] for item in matrix.admin.switches()]
    ours = [job for job in switched if job in {first.retrain_job_id, second.retrain_job_id}]
    assert ours[-1] == second.retrain_job_id
    assert second.switched is True


def test_nothing_secret_is_written_anywhere(matrix):
    text = everything_written(matrix.stack)

    assert "/v1/external/" in text  # the client's request log was captured
    assert leaks(text, matrix.keys.values()) == []
