"""Test data: tables and zips for uploads, the S3 events that start a run, the template's functions.
Synthetic training tables are the demo's own (``p1_retrain.local.data.synthetic_csv``); these are the
small, predictable ones tests compare against."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from p1_retrain.local.data import synthetic_csv

__all__ = ["FUNCTIONS", "object_created_event", "synthetic_csv", "table", "zip_names", "zip_of"]

# Every function in template.yaml by logical id, with its folder under functions/.
FUNCTIONS = {
    "UploadFunction": "upload",
    "CheckStatusFunction": "check_status",
    "ArchiveFunction": "archive",
    "SwitchModelFunction": "switch_model",
    "RecordFailureFunction": "record_failure",
    "StartWatchFunction": "start_watch",
    "CheckTrainingFunction": "check_training",
    "ArchiveTrainingFunction": "archive_training",
}


def table(
    rows: int = 120,
    columns: int = 3,
    *,
    header: Iterable[str] | None = None,
    cell: Callable[[int, int], object] | None = None,
    delimiter: str = ",",
) -> bytes:
    """A header line plus ``rows`` data lines, each ended by a newline. ``header`` names the columns
    (``col0``, ``col1``, ... by default, ``columns`` of them); ``cell(row, column)`` gives a field (by
    default ``row * columns + column``)."""
    names = list(header) if header is not None else [f"col{column}" for column in range(columns)]
    width = len(names)
    value = cell or (lambda row, column: row * width + column)
    lines = [delimiter.join(names)]
    lines += [delimiter.join(str(value(row, column)) for column in range(width)) for row in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def zip_of(entries: Mapping[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding ``entries`` (archive name -> content), in their order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_names(data: bytes) -> list[str]:
    """The entry names of a zip, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def object_created_event(
    bucket: str,
    key: str,
    size: int,
    etag: str,
    version_id: str | None,
    sequencer: int,
    *,
    time: str | None = None,
    region: str = "us-east-1",
    account: str = "123456789012",
) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for a PutObject (``time`` defaults to now)."""
    obj: dict[str, Any] = {"key": key, "size": size, "etag": etag, "sequencer": f"{sequencer:018X}"}
    if version_id:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": account,
        "time": time or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "REQ",
            "requester": account,
            "reason": "PutObject",
        },
    }
