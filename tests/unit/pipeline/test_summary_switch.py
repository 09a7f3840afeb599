"""summary.json says why a model was not switched, also when switching is off for it."""

from __future__ import annotations

from datetime import UTC, datetime

from retrain_pipeline.archive import build_summary
from retrain_pipeline.source import SourceObject

SOURCE = SourceObject("bucket", "incoming/demo/a.csv", "v1", "etag", 1234, "01", "2024-05-01T12:00:00Z")
POLL = {"polls": 1, "status": "job_finished", "state": "finished", "checked_at": "2024-05-01T12:10:00.000Z"}


def _summary(auto_switch: bool) -> dict:
    job = {"model": "demo", "retrain_job_id": "job-1", "uploaded_at": "x", "auto_switch": auto_switch}
    return build_summary(
        source=SOURCE,
        job=job,
        poll=POLL,
        execution_id="arn:exec",
        result_key="results/demo/job-1/r.zip",
        result_size=1,
        result_filename="r.zip",
        entries=[],
        archived_at=datetime(2024, 5, 1, 12, 11, tzinfo=UTC),
    )


def test_switching_off_is_stated_with_its_reason() -> None:
    summary = _summary(auto_switch=False)
    assert summary["switched"] is False
    assert summary["switch"] == {"switched": False, "reason": "switching is off for this model"}


def test_switching_on_leaves_the_outcome_to_the_switch_step() -> None:
    summary = _summary(auto_switch=True)
    assert summary["switched"] is False
    assert summary["switch"] is None
