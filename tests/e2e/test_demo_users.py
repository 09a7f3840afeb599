"""``p1-retrain demo`` as users try it: model folders in any language, sub-folders of a model folder,
two versions of one file with switching on."""

from __future__ import annotations

import json
import re
from pathlib import Path

from p1_retrain.cli import build_parser
from p1_retrain.local import demo
from p1_retrain.local.data import synthetic_csv


def _args(tmp_path: Path, *argv: str):
    return build_parser().parse_args(
        ["demo", "--output", str(tmp_path / "out"), "--job-seconds", "0.3", "--json", *argv]
    )


def _file(folder: Path, name: str, seed: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(synthetic_csv(seed))
    return str(path)


def _summary(capsys) -> tuple[dict, str]:
    captured = capsys.readouterr()
    return json.loads(captured.out.strip().splitlines()[-1]), captured.err


def test_a_model_folder_in_japanese(tmp_path, capsys):
    data = _file(tmp_path, "売上.csv", 1)
    assert demo.run(_args(tmp_path, data, "--model", "売上予測", "--switch")) == 0
    summary, err = _summary(capsys)
    (run,) = summary["runs"]
    assert run["key"] == "incoming/売上予測/売上.csv"
    assert run["status"] == "SUCCEEDED" and run["switched"] is True, run
    assert run["result_key"] == f"results/売上予測/{run['retrain_job_id']}/retrain_result.zip"
    assert (tmp_path / "out" / run["result_key"]).is_file()
    assert "UnicodeEncodeError" not in err


def test_files_under_sub_folders_of_the_model_folder(tmp_path, capsys):
    data = _file(tmp_path, "data.csv", 2)
    assert demo.run(_args(tmp_path, data, "--model", "demo/2026/11")) == 0
    summary, _err = _summary(capsys)
    (run,) = summary["runs"]
    assert run["key"] == "incoming/demo/2026/11/data.csv"
    assert run["status"] == "SUCCEEDED", run
    # The model is the first folder only.
    assert run["result_key"] == f"results/demo/{run['retrain_job_id']}/retrain_result.zip"


_UPLOADED = re.compile(r"^(incoming/\S+ \(version [^)]+\)): uploaded, retrain job (\S+)$", re.M)
_SWITCHED = re.compile(r"^(incoming/\S+ \(version [^)]+\)): model switched$", re.M)


def test_two_versions_of_one_key_are_two_runs_in_progress_and_summary(tmp_path, capsys):
    older = _file(tmp_path / "october", "sales.csv", 3)
    newer = _file(tmp_path / "november", "sales.csv", 4)
    assert demo.run(_args(tmp_path, older, newer, "--switch")) == 0
    summary, err = _summary(capsys)
    runs = summary["runs"]
    assert [run["key"] for run in runs] == ["incoming/demo/sales.csv"] * 2
    assert len({run["retrain_job_id"] for run in runs}) == 2
    assert summary["retrain_jobs_created"] == 2
    # The newest version wins the switch.
    assert runs[1]["switched"] is True
    # Progress: one line of its own per run, and "switched" exactly for the runs the summary says.
    job_of = dict(_UPLOADED.findall(err))
    assert sorted(job_of.values()) == sorted(run["retrain_job_id"] for run in runs), err
    switched_jobs = sorted(job_of[label] for label in _SWITCHED.findall(err))
    assert switched_jobs == sorted(run["retrain_job_id"] for run in runs if run["switched"]), err
