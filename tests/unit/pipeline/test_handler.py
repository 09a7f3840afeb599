"""step_handler: what every Lambda handler does around its step."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from prediction_one import deadline
from retrain_pipeline.errors import EmptyObject
from retrain_pipeline.handler import step_handler, telemetry
from retrain_pipeline.step import UPLOAD, StepOutput

from tests.fakes import FakeContext


def _context() -> FakeContext:
    """The probe function's context, one minute left in the invocation."""
    return FakeContext(
        function_name="probe",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:probe",
        remaining_ms=60_000,
    )


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The handlers' log lines, formatted as in Lambda (the shared logger keeps the stream it began with)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Probe")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    logger = telemetry().logger
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def test_the_step_runs_inside_the_deadline_and_its_output_metrics_and_log_come_out(
    logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    @step_handler(UPLOAD, correlation_id_path="job.id")
    def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
        seen["budget"] = deadline.remaining()
        return StepOutput(
            {"done": event["job"]["id"]},
            [("FilesAccepted", MetricUnit.Count, 1)],
            log="Probe done",
            log_extra={"thing": 1},
        )

    assert lambda_handler({"job": {"id": "j-1"}}, _context()) == {"done": "j-1"}
    assert seen["budget"] is not None and 0 < seen["budget"] <= 60 - deadline.SAFETY_SECONDS
    emf = [line for line in _lines(capsys.readouterr().out) if "_aws" in line]
    assert [line["FilesAccepted"] for line in emf] == [[1.0]]
    done = next(line for line in _lines(logs.getvalue()) if line.get("message") == "Probe done")
    assert (done["thing"], done["correlation_id"]) == (1, "j-1")


def test_a_correlation_id_learnt_by_the_step_is_logged(logs: io.StringIO) -> None:
    @step_handler(UPLOAD)
    def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
        return StepOutput({}, log="Probe started", correlation_id="job-9")

    lambda_handler({}, _context())
    line = next(line for line in _lines(logs.getvalue()) if line.get("message") == "Probe started")
    assert line["correlation_id"] == "job-9"


def test_a_failing_step_is_logged_by_name_without_secrets_and_raised(logs: io.StringIO) -> None:
    @step_handler(UPLOAD)
    def lambda_handler(event: dict[str, Any], context: Any) -> StepOutput:
        raise EmptyObject("b", "incoming/m/a.csv?X-Amz-Signature=secret")

    with pytest.raises(EmptyObject):
        lambda_handler({}, _context())
    out = logs.getvalue()
    line = next(line for line in _lines(out) if line.get("message") == "Upload failed")
    assert (line["error"], line["step"]) == ("EmptyObject", UPLOAD)
    assert "secret" not in out
