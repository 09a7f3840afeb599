"""The training watcher's handlers (CheckTraining, ArchiveTraining) on moto and the emulator over HTTP."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prediction_one import PredictionOneClient
from prediction_one import errors as p1_errors
from retrain_pipeline import idempotency
from retrain_pipeline.errors import ModelNotConfigured, TrainingResultNotAvailable

from tests.testdata import zip_names


class Watch:
    """Calls the watcher's handlers with the state machine's input shapes and counts the client's calls
    (``calls["status"]``: endpoint 4, ``calls["download"]``: result downloads) as they are made."""

    def __init__(self, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self.admin = stack.emulator.admin
        self.calls = {"status": 0, "download": 0}
        for name, method in (("status", "get_training_result"), ("download", "download")):
            monkeypatch.setattr(
                PredictionOneClient, method, self._counted(name, getattr(PredictionOneClient, method))
            )

    def _counted(self, name: str, real: Any) -> Any:
        def call(client: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return real(client, *args, **kwargs)

        return call

    def training(self, seconds: float = 0.0, outcome: str = "finished", model: str = "demo") -> str:
        return self.admin.create_training(model, seconds=seconds, outcome=outcome)

    def put_request(self, process_id: str, key: str = "training/demo/run.json") -> dict[str, Any]:
        """Put ``{"external_process_id": ...}`` at ``key``; the Object Created event S3 would send."""
        return self.stack.put(key, json.dumps({"external_process_id": process_id}).encode())

    def start(self, request: Any, execution_id: str | None = None) -> dict[str, Any]:
        execution_id = execution_id or self.stack.execution_arn()
        return self.stack.invoke("start_watch", {"request": request, "execution_id": execution_id})

    def check(self, state: dict[str, Any]) -> dict[str, Any]:
        state["poll"] = self.stack.invoke(
            "check_training", {"training": state["training"], "poll": state["poll"]}
        )
        return state

    def archive(self, state: dict[str, Any], execution_id: str | None = None) -> dict[str, Any]:
        state["archive"] = self.stack.invoke(
            "archive_training",
            {
                "source": state["source"],
                "training": state["training"],
                "poll": state["poll"],
                "execution_id": execution_id or state["execution_id"],
            },
        )
        return state


@pytest.fixture
def watch(stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Watch]:
    # Import the handlers before capsys/capfd swap sys.stdout (their loggers keep the stream they start with).
    for name in ("start_watch", "check_training", "archive_training"):
        stack.load_app(name)
    idempotency.persistence.cache_clear()
    yield Watch(stack, monkeypatch)
    idempotency.persistence.cache_clear()


def test_a_finished_run_is_archived_byte_for_byte_with_a_summary(watch: Watch) -> None:
    process_id = watch.training()
    event = watch.put_request(process_id, "training/demo/churn 2024+06.json")
    execution = watch.stack.execution_arn()

    state = watch.start(event, execution)
    assert state["duplicate"] is False and state["execution_id"] == execution
    assert state["training"]["model"] == "demo"
    assert state["training"]["external_process_id"] == process_id
    assert state["source"]["key"] == "training/demo/churn 2024+06.json"
    assert (state["poll"]["state"], state["poll"]["status"], state["poll"]["polls"]) == (
        "finished",
        "finished",
        1,
    )
    assert state["poll"]["created_datetime"] and state["poll"]["updated_datetime"]
    assert "message" not in state["poll"] and "model_id" not in state["poll"]

    archive = watch.archive(state)["archive"]
    expected = watch.admin.result_bytes(process_id)
    prefix = f"results/demo/training/{process_id}/"
    assert archive["result_key"] == prefix + "train_result.zip"
    assert archive["summary_key"] == prefix + "summary.json"
    assert (archive["size"], archive["already_archived"]) == (len(expected), False)
    stored = watch.stack.s3.get_object(Bucket=watch.stack.bucket, Key=archive["result_key"])
    assert hashlib.sha256(stored["Body"].read()).digest() == hashlib.sha256(expected).digest()
    assert stored["ContentType"] == "application/zip"
    assert archive["entries"] == zip_names(expected) and archive["entries"]

    summary = watch.stack.read_json(archive["summary_key"])
    assert summary["workflow"] == "training"
    assert (summary["model"], summary["external_process_id"]) == ("demo", process_id)
    assert summary["status"] == "finished"
    assert summary["source"] == state["source"]
    assert summary["execution_id"] == execution
    assert summary["result"] == {
        "key": archive["result_key"],
        "filename": "train_result.zip",
        "size": len(expected),
        "entries": zip_names(expected),
    }
    assert summary["timings"]["requested_at"] == state["training"]["requested_at"]
    assert summary["timings"]["archived_at"] >= summary["timings"]["finished_at"]
    assert summary["polls"] == 1
    json.dumps(state)  # the state is plain JSON


def test_a_running_run_is_polled_with_the_backoff_until_it_finishes(watch: Watch) -> None:
    process_id = watch.training(seconds=30)
    state = watch.start(watch.put_request(process_id))
    poll = state["poll"]
    assert (poll["state"], poll["status"], poll["polls"]) == ("running", "running", 1)
    assert 1 <= poll["wait_seconds"] <= 5  # POLL_INTERVAL_SECONDS=1, MAX_POLL_INTERVAL_SECONDS=5
    assert poll["deadline_at"] > poll["started_at"] == state["training"]["requested_at"]

    state = watch.check(state)
    assert (state["poll"]["state"], state["poll"]["polls"]) == ("running", 2)
    watch.admin.advance_clock(60)
    state = watch.check(state)
    assert (state["poll"]["state"], state["poll"]["status"], state["poll"]["polls"]) == (
        "finished",
        "finished",
        3,
    )
    assert state["poll"]["started_at"] == poll["started_at"]
    assert watch.archive(state)["archive"]["entries"]


def test_a_failed_run_is_classified_failed(watch: Watch) -> None:
    state = watch.start(watch.put_request(watch.training(outcome="failed")))
    assert (state["poll"]["state"], state["poll"]["status"]) == ("failed", "failed")


def test_custom_failure_statuses(watch: Watch, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILURE_STATUSES", "canceled")
    state = watch.start(watch.put_request(watch.training(outcome="failed")))
    assert state["poll"]["state"] == "running"  # "failed" is not a failure status any more


def test_a_run_still_running_at_the_deadline(watch: Watch) -> None:
    state = watch.start(watch.put_request(watch.training(outcome="never")))
    state["poll"]["deadline_at"] = state["poll"]["started_at"]  # a deadline already behind us
    state = watch.check(state)
    assert (state["poll"]["state"], state["poll"]["status"]) == ("deadline", "running")


def test_a_direct_start_needs_no_object(watch: Watch) -> None:
    process_id = watch.training()
    state = watch.start({"model": "demo", "external_process_id": process_id})
    assert state["source"] is None and state["duplicate"] is False
    assert state["poll"]["state"] == "finished"
    archive = watch.archive(state)["archive"]
    summary = watch.stack.read_json(archive["summary_key"])
    assert summary["source"] is None and summary["timings"]["event_time"] is None
    assert watch.stack.s3.get_object(Bucket=watch.stack.bucket, Key=archive["result_key"])[
        "Body"
    ].read() == watch.admin.result_bytes(process_id)


def test_the_same_request_version_is_watched_once(watch: Watch) -> None:
    event = watch.put_request(watch.training(seconds=30))
    first_execution, second_execution = watch.stack.execution_arn(), watch.stack.execution_arn()
    first = watch.start(event, first_execution)
    checks = watch.calls["status"]

    again = watch.start(event, first_execution)  # the same execution retrying the step
    assert again["duplicate"] is False and again["training"] == first["training"]
    duplicate = watch.start(event, second_execution)  # the event delivered twice
    assert duplicate["duplicate"] is True
    assert duplicate["created_by_execution"] == first_execution
    assert duplicate["training"] == first["training"]
    assert watch.calls["status"] == checks + 1  # only the retry asked Prediction One

    newer = watch.start(watch.put_request(first["training"]["external_process_id"]), second_execution)
    assert newer["duplicate"] is False  # a new object version is a new watch


def test_a_second_archive_of_the_same_run_downloads_nothing(watch: Watch) -> None:
    process_id = watch.training()
    first = watch.archive(watch.start(watch.put_request(process_id)))
    downloads = watch.calls["download"]

    second = watch.archive(watch.start({"model": "demo", "external_process_id": process_id}))
    assert second["archive"]["already_archived"] is True
    assert {k: v for k, v in second["archive"].items() if k != "already_archived"} == {
        k: v for k, v in first["archive"].items() if k != "already_archived"
    }
    assert watch.calls["download"] == downloads
    versions = watch.stack.s3.list_object_versions(
        Bucket=watch.stack.bucket, Prefix=first["archive"]["result_key"]
    )
    assert len(versions["Versions"]) == 1
    summary = watch.stack.read_json(first["archive"]["summary_key"])
    assert summary["execution_id"] == first["execution_id"]  # the first archive's record stands


def test_an_expired_result_url_is_replaced_once(watch: Watch, expire_downloads: Any) -> None:
    process_id = watch.training()
    state = watch.start(watch.put_request(process_id))
    refused = expire_downloads(times=1)
    checks = watch.calls["status"]
    archive = watch.archive(state)["archive"]
    assert len(refused) == 1
    assert watch.calls["status"] == checks + 2  # a fresh URL before each download
    stored = watch.stack.s3.get_object(Bucket=watch.stack.bucket, Key=archive["result_key"])["Body"].read()
    assert stored == watch.admin.result_bytes(process_id)


def test_a_second_expired_url_fails_and_leaves_nothing(watch: Watch, expire_downloads: Any) -> None:
    process_id = watch.training()
    state = watch.start(watch.put_request(process_id))
    refused = expire_downloads(times=2)
    with pytest.raises(p1_errors.UrlExpired):
        watch.archive(state)
    assert len(refused) == 2
    assert watch.stack.keys(f"results/demo/training/{process_id}/") == []


def test_a_finished_run_without_result_url(watch: Watch, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    state = watch.start(watch.put_request(watch.training()))
    real = PredictionOneClient.get_training_result
    monkeypatch.setattr(
        PredictionOneClient,
        "get_training_result",
        lambda self, process_id: dataclasses.replace(real(self, process_id), result_url=None),
    )
    with pytest.raises(TrainingResultNotAvailable, match="no result_url"):
        watch.archive(state)


def test_a_deleted_user_is_the_documented_row(watch: Watch) -> None:
    event = watch.put_request(watch.training())
    watch.admin.delete_user("demo")
    with pytest.raises(p1_errors.UserDeleted) as deleted:
        watch.start(event)
    assert deleted.value.api_message == "This user may be deleted."
    assert deleted.value.code == 4001000204


def test_an_unknown_process_id_is_refused_by_name(watch: Watch) -> None:
    with pytest.raises(p1_errors.BadRequest, match="Not found external_process_id"):
        watch.start(watch.put_request("no-such-process"))


def test_a_model_without_key_is_refused_before_any_api_call(watch: Watch) -> None:
    with pytest.raises(ModelNotConfigured, match="'nobody'"):
        watch.start({"model": "nobody", "external_process_id": "p-1"})
    with pytest.raises(ModelNotConfigured):
        watch.start(watch.put_request("p-1", "training/nobody/run.json"))
    assert watch.calls["status"] == 0


def test_missing_fields_are_named(watch: Watch) -> None:
    with pytest.raises(ValueError, match="'poll'"):
        watch.stack.invoke("check_training", {"training": {"model": "demo", "external_process_id": "x"}})
    with pytest.raises(ValueError, match="'external_process_id'"):
        watch.stack.invoke(
            "archive_training",
            {"source": None, "training": {"model": "demo"}, "poll": {}, "execution_id": "x"},
        )


def test_metrics_name_the_watch(watch: Watch, capsys: pytest.CaptureFixture[str]) -> None:
    state = watch.archive(watch.start(watch.put_request(watch.training())))
    assert state["archive"]["size"] > 0
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {item["Name"] for line in metrics for item in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"TrainingWatchesStarted", "TrainingsFinished", "TrainingResultsArchived"} <= names


def test_no_secret_in_logs_states_or_records(watch: Watch, logs: io.StringIO, written: Any) -> None:
    api_key = "sk-live-training-0123456789abcdef"
    watch.admin.add_model("churn", api_key)
    watch.stack.set_secret({"demo": "demo-key", "churn": api_key})
    process_id = watch.training(model="churn")
    state = watch.archive(watch.start(watch.put_request(process_id, "training/churn/run.json")))

    watch.stack.set_secret({"demo": "demo-key", "churn": "wrong-" + api_key})
    bad = watch.put_request(process_id, "training/churn/again.json")
    with pytest.raises(p1_errors.ApiKeyInvalid) as raised:
        watch.start(bad)
    failed = watch.stack.failed_with(bad, "ApiKeyInvalid", str(raised.value), "StartWatch")
    failure = watch.stack.record_failure(failed, watch.stack.execution_arn())

    text = written(state, failure)
    assert "Training watch started" in logs.getvalue()  # the capture did see the run
    assert "/_storage/results/" in logs.getvalue()  # including the client's download line
    assert api_key not in text
    assert not re.search(r"X-Amz-(Signature|Credential|Date|Expires)=", text, re.IGNORECASE)


def test_a_bare_request_is_accepted_for_local_invocation(watch: Watch) -> None:
    process_id = watch.training()
    state = watch.stack.invoke("start_watch", {"model": "demo", "external_process_id": process_id})
    assert state["training"]["external_process_id"] == process_id
    assert state["execution_id"].startswith("invocation:")
