"""S3 "Object Created" events as S3 itself sends them through EventBridge.

moto's events carry a ``time`` rounded down to the second, one constant ``sequencer`` for every event
and the field ``eTag``. The pipeline orders the files of one model by these facts, so the local stack
rewrites each event before starting an execution: ``time`` with milliseconds, a ``sequencer`` that
strictly increases (for each key, as S3 guarantees; here across all keys), and ``etag`` spelled as AWS
spells it, and an event id of its own for each object version (moto repeats one). A redelivered event
of the same object version is rewritten the same way again, as S3 would resend it.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from retrain_pipeline.timestamps import parse_iso

_REMEMBERED_EVENTS = 10_000
SEQUENCER_DIGITS = 18  # the length S3's sequencers usually have


class S3EventRewriter:
    """Rewrite moto's EventBridge S3 events into AWS's shape; thread-safe.

    ``clock`` gives the arrival time (seconds since the epoch). ``last_modified(bucket, key, version_id)``,
    when given, returns the object's LastModified (a ``datetime``, or ``None`` when unknown); the later of
    that and the event's own time is used, never an earlier time than the event's.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        last_modified: Callable[[str, str, str | None], datetime | None] | None = None,
    ) -> None:
        self._clock = clock
        self._last_modified = last_modified
        self._lock = threading.Lock()
        self._last_time_ms = 0
        self._last_sequencer = 0
        self._seen: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def rewrite(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as S3 would send it; any other event is returned as it is."""
        detail = event.get("detail") if isinstance(event, dict) else None
        if event.get("source") != "aws.s3" or not isinstance(detail, dict):
            return event
        obj = detail.get("object")
        if not isinstance(obj, dict) or "key" not in obj:
            return event
        bucket = str((detail.get("bucket") or {}).get("name") or "")
        version = str(obj.get("version-id") or obj.get("etag") or obj.get("eTag") or "")
        # moto repeats one event id for many objects: each object version gets its own, stable id.
        identity = "\n".join((str(event.get("id") or ""), bucket, str(obj["key"]), version))
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, identity))
        with self._lock:
            if event_id in self._seen:
                return copy.deepcopy(self._seen[event_id])
            rewritten = copy.deepcopy(event)
            rewritten["id"] = event_id
            robj = rewritten["detail"]["object"]
            if "eTag" in robj:
                robj.setdefault("etag", str(robj.pop("eTag")).strip('"'))
            time_ms = self._time_ms(event, detail, obj)
            # Strictly increasing: a nanosecond clock, bumped past the last one handed out.
            self._last_sequencer = max(self._last_sequencer + 1, time_ms * 1_000_000)
            robj["sequencer"] = f"{self._last_sequencer:0{SEQUENCER_DIGITS}X}"
            rewritten["time"] = _iso_ms(time_ms)
            self._seen[event_id] = copy.deepcopy(rewritten)
            while len(self._seen) > _REMEMBERED_EVENTS:
                self._seen.popitem(last=False)
            return rewritten

    def _time_ms(self, event: dict[str, Any], detail: dict[str, Any], obj: dict[str, Any]) -> int:
        candidates = [int(self._clock() * 1000)]
        if self._last_modified is not None:
            bucket = str((detail.get("bucket") or {}).get("name") or "")
            modified = self._last_modified(bucket, str(obj["key"]), obj.get("version-id"))
            if modified is not None:
                candidates = [int(modified.timestamp() * 1000)]
        stated = _parse(event.get("time"))
        if stated is not None:
            candidates.append(stated)
        # Never before the time moto stated, never before an event already rewritten.
        self._last_time_ms = max(max(candidates), self._last_time_ms)
        return self._last_time_ms


def _parse(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(parse_iso(value).timestamp() * 1000)
    except ValueError:
        return None


def _iso_ms(time_ms: int) -> str:
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
