"""Archive handler: streaming the results file, summary.json, expired result URLs."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

import pytest
from prediction_one import PredictionOneClient
from prediction_one import errors as p1_errors
from retrain_pipeline.errors import ResultNotAvailable


def finished(stack: Any, key: str = "incoming/demo/sales.csv") -> dict[str, Any]:
    state = stack.wait_finished(stack.upload(stack.put(key, stack.csv_bytes()), stack.execution_arn()))
    assert state["poll"]["state"] == "finished"
    return state


def test_results_are_archived_byte_for_byte_with_a_summary(stack: Any) -> None:
    state = stack.archive(finished(stack))
    job_id = state["job"]["retrain_job_id"]
    archive = state["archive"]
    expected = stack.emulator.admin.result_bytes(job_id)

    assert archive["result_key"] == f"results/demo/{job_id}/retrain_result.zip"
    assert archive["summary_key"] == f"results/demo/{job_id}/summary.json"
    assert archive["size"] == len(expected)
    stored = stack.s3.get_object(Bucket=stack.bucket, Key=archive["result_key"])
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert stored["ContentType"] == "application/zip"
    assert archive["entries"] == zipfile.ZipFile(io.BytesIO(expected)).namelist()

    summary = stack.read_json(archive["summary_key"])
    assert summary["retrain_job_id"] == job_id
    assert summary["model"] == "demo"
    assert summary["status"] == "job_finished"
    assert summary["source"] == state["source"]
    assert summary["result"]["entries"] == archive["entries"]
    assert summary["result"]["size"] == len(expected)
    assert summary["polls"] == 1
    assert summary["switched"] is False
    assert summary["execution_id"] == state["execution_id"]
    assert summary["timings"]["uploaded_at"] == state["job"]["uploaded_at"]
    assert summary["timings"]["archived_at"] >= summary["timings"]["finished_at"]


def test_summary_of_an_awkward_key(stack: Any) -> None:
    key = "incoming/demo/月次 sales+2024.csv"
    state = stack.archive(finished(stack, key))
    assert stack.read_json(state["archive"]["summary_key"])["source"]["key"] == key


def _status_calls(stack: Any) -> int:
    return sum(1 for entry in stack.emulator.admin.requests_log() if entry["endpoint"] == "retrain_status")


def test_expired_download_url_is_replaced_once(stack: Any, expire_downloads: Any) -> None:
    state = finished(stack)
    refused = expire_downloads(times=1)
    before = _status_calls(stack)
    state = stack.archive(state)
    assert len(refused) == 1
    assert _status_calls(stack) == before + 2
    expected = stack.emulator.admin.result_bytes(state["job"]["retrain_job_id"])
    assert (
        stack.s3.get_object(Bucket=stack.bucket, Key=state["archive"]["result_key"])["Body"].read()
        == expected
    )


def test_a_second_expired_url_fails_and_leaves_nothing_half_written(
    stack: Any, expire_downloads: Any
) -> None:
    state = finished(stack)
    refused = expire_downloads(times=2)
    before = _status_calls(stack)
    with pytest.raises(p1_errors.UrlExpired):
        stack.archive(state)
    assert len(refused) == 2
    assert _status_calls(stack) == before + 2  # a fresh URL was asked for before each download
    assert stack.keys(f"results/demo/{state['job']['retrain_job_id']}/") == []


def test_job_without_download_url(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    state = finished(stack)
    real = PredictionOneClient.get_retrain_job

    def no_url(self: Any, retrain_job_id: str) -> Any:
        import dataclasses

        return dataclasses.replace(real(self, retrain_job_id), download_url=None)

    monkeypatch.setattr(PredictionOneClient, "get_retrain_job", no_url)
    with pytest.raises(ResultNotAvailable, match="no download_url"):
        stack.archive(state)
