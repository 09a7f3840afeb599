"""Logs and metrics helpers shared by the handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from retrain_pipeline.errors import EmptyObject
from retrain_pipeline.telemetry import (
    DEFAULT_NAMESPACE,
    LIBRARY_LOGGERS,
    new_metrics,
    publish,
    reported,
    route_library_logs,
    unwrap,
)


@pytest.fixture
def library_loggers() -> Iterator[None]:
    saved = {name: logging.getLogger(name) for name in LIBRARY_LOGGERS}
    state = {name: (target.handlers[:], target.propagate, target.level) for name, target in saved.items()}
    for target in saved.values():  # start from the default state, whatever ran before in this process
        target.handlers = []
        target.propagate = True
    yield
    for name, (handlers, propagate, level) in state.items():
        saved[name].handlers = handlers
        saved[name].propagate = propagate
        saved[name].setLevel(level)


def test_library_logs_are_routed_only_inside_lambda(library_loggers: None) -> None:
    import prediction_one.http  # noqa: F401
    import retrain_pipeline.retrain_steps  # noqa: F401 - registers the library loggers

    logger = Logger(service="telemetry-probe")
    assert route_library_logs(logger, {}) is False
    for name in LIBRARY_LOGGERS:
        assert logging.getLogger(name).propagate is True
        assert logging.getLogger(name).handlers == []

    assert route_library_logs(logger, {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.11"}) is True
    for name in LIBRARY_LOGGERS:
        target = logging.getLogger(name)
        assert target.propagate is False
        assert target.handlers == logger.handlers


def test_reported_logs_the_error_name_and_reraises(caplog: pytest.LogCaptureFixture) -> None:
    logger = Logger(service="telemetry-probe-2")
    logger.addHandler(caplog.handler)
    with pytest.raises(EmptyObject), reported(logger, "Upload"):
        raise EmptyObject("b", "incoming/m/a.csv")
    record = next(r for r in caplog.records if r.getMessage() == "Upload failed")
    assert record.error == "EmptyObject"
    with pytest.raises(KeyError), reported(logger, "Upload"):
        raise KeyError("x")
    assert any(r.getMessage() == "Upload failed unexpectedly" for r in caplog.records)


def test_unwrap_names_the_missing_field() -> None:
    assert unwrap({"job": 1}, "job") == 1
    with pytest.raises(ValueError, match="no 'poll' field"):
        unwrap({"job": 1}, "poll")


def _emf_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def test_publish_flushes_one_emf_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Probe")
    metrics = new_metrics()
    publish(metrics, [])
    assert _emf_lines(capsys.readouterr().out) == []
    publish(metrics, [("FilesAccepted", MetricUnit.Count, 1), ("BytesUploaded", MetricUnit.Bytes, 10.0)])
    (line,) = _emf_lines(capsys.readouterr().out)
    assert (line["FilesAccepted"], line["BytesUploaded"]) == ([1.0], [10.0])
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Probe"
    assert metrics.metric_set == {}


def test_publish_from_many_threads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Probe")
    metrics = new_metrics()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [
            pool.submit(publish, metrics, [("JobsFinished", MetricUnit.Count, 1)]) for _ in range(200)
        ]:
            future.result()
    lines = _emf_lines(capsys.readouterr().out)
    assert len(lines) == 200
    assert sum(sum(line["JobsFinished"]) for line in lines) == 200


def test_the_namespace_is_the_environments_else_the_templates(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "FromEnvironment")
    assert new_metrics().namespace == "FromEnvironment"
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    metrics = new_metrics()
    assert metrics.namespace == DEFAULT_NAMESPACE
    publish(metrics, [("FilesAccepted", MetricUnit.Count, 1)])  # a flush never lacks a namespace
    (line,) = _emf_lines(capsys.readouterr().out)
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == DEFAULT_NAMESPACE
