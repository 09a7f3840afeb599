"""Progress lines are per run: two versions of one key are two jobs, each with its own switch outcome."""

from __future__ import annotations

import io
import json


def _exited(name: str, state: dict) -> dict:
    return {"type": "TaskStateExited", "stateExitedEventDetails": {"name": name, "output": json.dumps(state)}}


def history(job: str, switched: bool) -> list[dict]:
    reason = "the retrained model was published" if switched else "a newer file was already switched"
    return [
        {"type": "ExecutionStarted"},
        _exited("Upload", {"job": {"retrain_job_id": job}}),
        _exited("CheckStatus", {"poll": {"polls": 1, "status": "job_finished", "state": "finished"}}),
        _exited("Archive", {"archive": {"result_key": f"results/demo/{job}/r.zip"}}),
        _exited("SwitchModel", {"switch": {"switched": switched, "reason": reason}}),
        {"type": "ExecutionSucceeded"},
    ]


def test_two_versions_of_one_key_are_two_lines_of_progress() -> None:
    from p1_retrain.local.progress import Progress, observe

    key = "incoming/demo/sales.csv"
    stream = io.StringIO()
    progress = Progress(stream, live=False)
    newer = history("job-2", switched=True)
    older = history("job-1", switched=False)
    for length in (2, len(newer)):
        progress.update(
            [
                observe(key, older[:length], "arn:exec-1", "v1"),
                observe(key, newer[:length], "arn:exec-2", "v2"),
            ]
        )
    lines = stream.getvalue().splitlines()
    assert f"{key} (version v1): uploaded, retrain job job-1" in lines
    assert f"{key} (version v2): uploaded, retrain job job-2" in lines
    assert [line for line in lines if "switched" in line] == [
        f"{key} (version v1): not switched (a newer file was already switched)",
        f"{key} (version v2): model switched",
    ]
    assert sum(line.endswith("SUCCEEDED") for line in lines) == 2


def test_live_table_has_one_row_per_run() -> None:
    from p1_retrain.local.progress import Progress, observe

    key = "incoming/demo/sales.csv"
    stream = io.StringIO()
    progress = Progress(stream, live=True)
    progress.update(
        [
            observe(key, history("job-1", False), "arn:exec-1", "v1"),
            observe(key, history("job-2", True), "arn:exec-2", "v2"),
        ]
    )
    progress.finish()
    table = stream.getvalue().rsplit("\x1b[J", 1)[-1].splitlines()
    assert table[0] == "2/2 done, 0 failed"
    assert [row for row in table if key in row and "job-1" in row and "(version v1)" in row]
    assert [row for row in table if key in row and "job-2" in row and "(version v2)" in row]
