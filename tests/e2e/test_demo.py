"""``p1-retrain demo``: as a user runs it (a subprocess), and its reporting of failures and bad options."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from p1_retrain.cli import build_parser
from p1_retrain.local import demo

SIGNED_URL = re.compile(r"X-Amz-(Signature|Credential|Security-Token)")


def _demo(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p1_retrain.cli", "demo", "--output", str(tmp_path / "out"), *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_count_ten_reports_ten_successes_as_its_last_line(tmp_path):
    done = _demo(tmp_path, "--count", "10", "--job-seconds", "0.5", "--json")

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["files"] == 10
    assert summary["succeeded"] == 10
    assert summary["failed"] == 0
    assert summary["retrain_jobs_created"] == 10
    assert summary["duplicate_jobs"] == 0
    assert {run["key"].split("/")[1] for run in summary["runs"]} == {"demo", "churn", "sales"}
    for run in summary["runs"]:
        assert run["status"] == "SUCCEEDED"
        assert run["error"] is None
        assert (
            run["result_key"]
            == f"results/{run['key'].split('/')[1]}/{run['retrain_job_id']}/retrain_result.zip"
        )
        archived = tmp_path / "out" / run["result_key"]
        assert archived.is_file() and archived.stat().st_size > 0
        assert (archived.parent / "summary.json").is_file()
    assert json.loads((tmp_path / "out" / "demo-summary.json").read_text()) == summary
    assert "uploaded, retrain job" in done.stderr
    assert not SIGNED_URL.search(done.stdout + done.stderr)


@pytest.mark.slow
def test_train_watch_archives_the_training_results(tmp_path):
    csv = tmp_path / "one.csv"
    csv.write_bytes((Path(__file__).resolve().parents[2] / "events" / "data" / "sample.csv").read_bytes())
    done = _demo(tmp_path, str(csv), "--train-watch", "--job-seconds", "0.5", "--json")

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["files"], summary["succeeded"], summary["retrain_jobs_created"]) == (2, 2, 1)
    (training,) = [run for run in summary["runs"] if run["key"].startswith("training/demo/")]
    assert training["status"] == "SUCCEEDED"
    process_id = training["key"].removeprefix("training/demo/training-").removesuffix(".json")
    assert training["result_key"].startswith(f"results/demo/training/{process_id}/")
    archived = tmp_path / "out" / training["result_key"]
    assert archived.is_file() and archived.read_bytes()[:2] == b"PK"
    summary_json = json.loads((archived.parent / "summary.json").read_text())
    assert summary_json["result"]["entries"], summary_json


def _args(tmp_path: Path, *argv: str):
    return build_parser().parse_args(["demo", "--output", str(tmp_path / "out"), *argv])


def test_failed_file_names_its_error_and_sets_the_exit_status(tmp_path, samples, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")

    status = demo.run(_args(tmp_path, str(samples / "sample.csv"), str(empty), "--switch", "--json"))

    assert status == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["files"], summary["succeeded"], summary["failed"]) == (2, 1, 1)
    assert summary["retrain_jobs_created"] == 1
    by_key = {run["key"]: run for run in summary["runs"]}
    good, bad = by_key["incoming/demo/sample.csv"], by_key["incoming/demo/empty.csv"]
    assert good["status"] == "SUCCEEDED" and good["switched"] is True
    assert bad["status"] == "FAILED"
    assert bad["error"].startswith("EmptyObject: ")
    assert bad["retrain_job_id"] is None
    assert (tmp_path / "out" / "failed" / "demo" / "empty.csv.json").is_file()


def test_missing_file_is_refused_before_anything_starts(tmp_path, capsys):
    status = demo.run(_args(tmp_path, str(tmp_path / "nope.csv")))

    assert status == 2
    assert "nope.csv" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_options_are_refused(tmp_path, capsys):
    assert demo.run(_args(tmp_path, "--fault-rate", "1.5")) == 2
    assert "--fault-rate" in capsys.readouterr().err
    assert demo.run(_args(tmp_path, "--model", "a//b")) == 2
    assert "--model" in capsys.readouterr().err
    assert demo.run(_args(tmp_path, "--eval", str(tmp_path / "x.csv"))) == 2
    assert "--eval" in capsys.readouterr().err


def test_plan_uses_samples_when_nothing_is_given(tmp_path, samples):
    drops = demo.plan_drops(_args(tmp_path), samples.parents[1])

    assert [drop.key for drop in drops] == ["incoming/demo/sample.csv", "incoming/demo/train+eval.zip"]


def test_plan_spreads_count_over_models_and_builds_zips(tmp_path, samples):
    train, evaluation = str(samples / "train.csv"), str(samples / "eval.csv")
    args = _args(tmp_path, train, "--eval", evaluation, "--train-eval", train, evaluation, "--count", "4")

    keys = [drop.key for drop in demo.plan_drops(args, samples.parents[1])]

    assert keys == [
        "incoming/demo/train.zip",
        "incoming/demo/train+eval.zip",
        "incoming/demo/synthetic-001.csv",
        "incoming/churn/synthetic-002.csv",
        "incoming/sales/synthetic-003.csv",
        "incoming/demo/synthetic-004.csv",
    ]
