"""Archiving a finished run: stream its results file from a fresh presigned URL into S3, list the zip's
entries, and describe it in ``summary.json`` (the retrain job's or the training run's)."""

from __future__ import annotations

import logging
import mimetypes
import posixpath
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from prediction_one import PredictionOneClient
from prediction_one import errors as p1_errors

from retrain_pipeline.keys import SUMMARY_NAME
from retrain_pipeline.s3io import S3MultipartWriter, zip_entries
from retrain_pipeline.source import SourceObject
from retrain_pipeline.timestamps import iso

logger = logging.getLogger(__name__)

DEFAULT_RESULT_NAME = "result.bin"
MAX_ENTRIES_IN_STATE = 100
SWITCHING_OFF = "switching is off for this model"


def result_filename(download_url: str) -> str:
    """The results file's name, from the download URL's path (never its query)."""
    name = posixpath.basename(unquote(urlsplit(download_url).path))
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "\\/").strip()
    if not name or name in {".", ".."}:
        return DEFAULT_RESULT_NAME
    if name == SUMMARY_NAME:
        return f"result-{name}"
    return name


@dataclass(frozen=True)
class ArchivedResult:
    """A results file streamed into S3: its file name, its S3 key, its size and its zip entry names."""

    filename: str
    key: str
    size: int
    entries: list[str]

    def to_dict(self) -> dict[str, Any]:
        """As ``summary.json`` holds it under ``result``."""
        return {"key": self.key, "filename": self.filename, "size": self.size, "entries": self.entries}


def archive_result(
    client: PredictionOneClient,
    s3: Any,
    bucket: str,
    fresh_url: Callable[[], str],
    key_for: Callable[[str], str],
    log_extra: Mapping[str, str],
) -> ArchivedResult:
    """Ask for a fresh presigned URL right before streaming it into S3 (multipart) at ``key_for(name)``;
    on an expired URL ask for another once. Then list the archived zip's entries."""
    for attempt in (1, 2):
        url = fresh_url()
        name = result_filename(url)
        key = key_for(name)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        writer = S3MultipartWriter(s3, bucket, key, content_type=content_type)
        try:
            size = client.download(url, writer)
            writer.close()
        except p1_errors.UrlExpired:
            writer.abort()
            if attempt == 2:
                raise
            logger.info("Result URL expired; asking for a fresh one", extra=dict(log_extra))
            continue
        except BaseException:
            writer.abort()
            raise
        return ArchivedResult(name, key, size, archived_entries(s3, bucket, key, size))
    raise AssertionError("unreachable: the second attempt returns or raises")


def archived_entries(s3: Any, bucket: str, key: str, size: int) -> list[str]:
    """The archived file's zip entry names (none when it is not a zip)."""
    try:
        return zip_entries(s3, bucket, key, size=size)
    except zipfile.BadZipFile:
        return []


def archive_output(result: ArchivedResult, summary_key: str, **extra: Any) -> dict[str, Any]:
    """The step's output: keys, size and at most MAX_ENTRIES_IN_STATE entry names (``entries_total``
    counts them all when there are more)."""
    output: dict[str, Any] = {
        "result_key": result.key,
        "summary_key": summary_key,
        "size": result.size,
        "entries": result.entries[:MAX_ENTRIES_IN_STATE],
        **extra,
    }
    if len(result.entries) > MAX_ENTRIES_IN_STATE:
        output["entries_total"] = len(result.entries)
    return output


def _summary(
    *,
    identity: Mapping[str, Any],
    source: SourceObject | None,
    execution_id: str,
    result: ArchivedResult,
    started: tuple[str, Any],
    poll: Mapping[str, Any],
    archived_at: datetime,
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        **identity,
        "source": source.to_dict() if source else None,
        "execution_id": execution_id,
        "result": result.to_dict(),
        "timings": {
            "event_time": (source.event_time or None) if source else None,
            started[0]: started[1],
            "finished_at": poll.get("checked_at"),
            "archived_at": iso(archived_at),
        },
        "polls": int(poll.get("polls") or 0),
        **extra,
    }


def build_summary(
    *,
    source: SourceObject,
    job: Mapping[str, Any],
    poll: Mapping[str, Any],
    execution_id: str,
    result: ArchivedResult,
    archived_at: datetime,
) -> dict[str, Any]:
    """The content of ``results/<model>/<job>/summary.json`` right after archiving (``switched: false``)."""
    return _summary(
        identity={
            "model": job["model"],
            "retrain_job_id": job["retrain_job_id"],
            "model_id": poll.get("model_id"),
            "status": poll.get("status"),
            "message": poll.get("message"),
        },
        source=source,
        execution_id=execution_id,
        result=result,
        started=("uploaded_at", job.get("uploaded_at")),
        poll=poll,
        archived_at=archived_at,
        extra={
            "auto_switch": bool(job.get("auto_switch")),
            "switched": False,
            # SwitchModel replaces this when switching is on; when it is off, say so here.
            "switch": None if job.get("auto_switch") else {"switched": False, "reason": SWITCHING_OFF},
        },
    )


def build_training_summary(
    *,
    source: SourceObject | None,
    training: Mapping[str, Any],
    poll: Mapping[str, Any],
    execution_id: str,
    result: ArchivedResult,
    archived_at: datetime,
    workflow: str,
) -> dict[str, Any]:
    """The content of ``results/<model>/training/<external_process_id>/summary.json``."""
    return _summary(
        identity={
            "workflow": workflow,
            "model": training["model"],
            "external_process_id": training["external_process_id"],
            "status": poll.get("status"),
            "created_datetime": poll.get("created_datetime"),
            "updated_datetime": poll.get("updated_datetime"),
        },
        source=source,
        execution_id=execution_id,
        result=result,
        started=("requested_at", training.get("requested_at")),
        poll=poll,
        archived_at=archived_at,
        extra={},
    )
