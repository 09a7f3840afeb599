"""Deterministic results files: a small zip of CSV/JSON metrics, the same bytes for the same job.

The API documents no content for the results file; this is our own stand-in (see the "results file" row of
the assumptions in ``docs/development.md``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import zipfile
from collections.abc import Sequence

from p1_retrain.emulator.validation import TableStats

RETRAIN_RESULT_NAME = "retrain_result.zip"
TRAINING_RESULT_NAME = "train_result.zip"
_ZIP_TIME = (2020, 1, 5, 10, 42, 26)  # fixed, so that the bytes depend on the job only
_FEATURES = ("age", "income", "tenure_months", "region", "plan", "last_login_days", "support_calls")


def _entry(archive: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, text.encode())


def _csv(rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def build_results_zip(
    kind: str, process_id: str, model: str, seed_text: str, tables: Sequence[TableStats] = ()
) -> bytes:
    """The results zip of one retrain job or training process; ``seed_text`` fixes its numbers."""
    rng = random.Random(hashlib.sha256(f"{kind}|{process_id}|{seed_text}".encode()).digest())
    accuracy = round(rng.uniform(0.70, 0.97), 4)
    auc = round(min(0.999, accuracy + rng.uniform(0.01, 0.05)), 4)
    metrics = {
        "kind": kind,
        "id": process_id,
        "model": model,
        "accuracy": accuracy,
        "auc": auc,
        "f1": round(accuracy - rng.uniform(0.0, 0.05), 4),
        "data": [{"name": t.name, "rows": t.rows, "columns": t.columns} for t in tables],
    }
    weights = sorted(((rng.random(), name) for name in _FEATURES), reverse=True)
    total = sum(weight for weight, _ in weights)
    importance = [("feature", "importance")] + [(name, round(w / total, 4)) for w, name in weights]
    evaluation: list[tuple[object, ...]] = [("threshold", "precision", "recall")]
    for step in range(1, 10):
        threshold = step / 10
        evaluation.append(
            (
                threshold,
                round(min(1.0, accuracy + threshold * 0.03), 4),
                round(max(0.0, 1 - threshold**1.5), 4),
            )
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _entry(archive, "metrics.json", json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        _entry(archive, "feature_importance.csv", _csv(importance))
        _entry(archive, "evaluation.csv", _csv(evaluation))
    return buffer.getvalue()
