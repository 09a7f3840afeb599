"""The S3 object that starts a retrain: parsing the EventBridge event and the key rules.

EventBridge "Object Created" events carry the key as it is (not URL-encoded), so the key is read raw
from ``detail.object.key``: Powertools' ``.key`` property would ``unquote_plus`` it and turn ``+`` into
a space. S3's other notification formats URL-encode keys, so a key whose decoded form differs is looked
up in both forms (``resolve_source``): the key as sent wins when that object exists.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent

from retrain_pipeline.errors import (
    EmptyObject,
    FolderMarker,
    KeyOutsideModelFolder,
    KeyOutsidePrefix,
    SourceObjectNotFound,
    UnsupportedFileType,
)
from retrain_pipeline.keys import model_and_rest
from retrain_pipeline.s3io import object_exists
from retrain_pipeline.settings import INCOMING_PREFIX
from retrain_pipeline.timestamps import parse_iso

logger = logging.getLogger(__name__)

SEQUENCER_WIDTH = 64


@dataclass(frozen=True)
class SourceObject:
    """One version of one S3 object, as the event named it (the contract's ``source`` shape)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int | None
    sequencer: str
    event_time: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceObject:
        try:
            bucket, key = data["bucket"], data["key"]
        except KeyError as missing:
            raise ValueError(f"source is missing {missing.args[0]!r}") from None
        size = data.get("size")
        return cls(
            bucket=str(bucket),
            key=str(key),
            version_id=data.get("version_id") or None,
            etag=str(data.get("etag") or ""),
            size=int(size) if size is not None else None,
            sequencer=str(data.get("sequencer") or ""),
            event_time=str(data.get("event_time") or ""),
        )

    @property
    def version(self) -> str:
        """What identifies this object version: the version id, else the etag, else the S3 sequencer."""
        return self.version_id or self.etag or self.sequencer

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def filename(self) -> str:
        """The key's basename: the ``filename`` sent to the upload URL endpoint (any UTF-8 name)."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]

    @property
    def extension(self) -> str:
        name = self.filename
        return name[name.rindex(".") :].lower() if "." in name else ""

    def with_key(self, key: str) -> SourceObject:
        return replace(self, key=key)

    def ordering_key(self, accepted_at: str = "") -> str:
        """Sortable "which file came later" key.

        S3 event times have one-second resolution and S3 sequencers only order events of the same key,
        so files dropped within one second are told apart by when the pipeline accepted them
        (``accepted_at``, microseconds: arrival order), then by the sequencer (right-padded).
        """
        sequencer = self.sequencer.upper().ljust(SEQUENCER_WIDTH, "0")
        accepted = _normalized_time(accepted_at) if accepted_at else ""
        return f"{_normalized_time(self.event_time)}#{accepted}#{sequencer}"


def _normalized_time(value: str) -> str:
    if not value:
        return "0000-00-00T00:00:00.000000+00:00"
    try:
        return parse_iso(value).isoformat(timespec="microseconds")
    except ValueError:
        return value


def parse_event(event: Mapping[str, Any]) -> SourceObject:
    """Read the source object from an EventBridge S3 "Object Created" event; ValueError if it is not one."""
    if not isinstance(event, Mapping) or not isinstance(event.get("detail"), Mapping):
        raise ValueError("event is not an EventBridge S3 event: it has no 'detail' object")
    parsed = S3EventBridgeNotificationEvent(dict(event))
    detail = parsed.detail
    try:
        bucket = detail.bucket.name
        raw_object = detail["object"]
        key = raw_object["key"]
    except (KeyError, TypeError) as missing:
        raise ValueError(
            f"EventBridge S3 event lacks detail.bucket.name or detail.object.key ({missing})"
        ) from None
    if not isinstance(key, str) or not key:
        raise ValueError("EventBridge S3 event has an empty detail.object.key")
    size = raw_object.get("size")
    return SourceObject(
        bucket=bucket,
        key=key,
        version_id=raw_object.get("version-id") or None,
        etag=str(raw_object.get("etag") or raw_object.get("eTag") or "").strip('"'),
        size=int(size) if size is not None else None,
        sequencer=str(raw_object.get("sequencer") or ""),
        event_time=str(event.get("time") or ""),
    )


def decoded_key(key: str) -> str:
    """The key as S3's URL-encoding notification formats would mean it (``+`` is a space, ``%XX`` a byte)."""
    return unquote_plus(key)


def check_prefix(source: SourceObject, prefix: str) -> None:
    """``KeyOutsidePrefix`` unless the key lies under the workflow's own prefix (in either encoding)."""
    if not (source.key.startswith(prefix) or decoded_key(source.key).startswith(prefix)):
        raise KeyOutsidePrefix(source.bucket, source.key, prefix)


def model_of(key: str, bucket: str | None = None) -> str:
    """The model a key names: the first path segment after ``incoming/``."""
    model, _rest = model_and_rest(key, INCOMING_PREFIX)
    if model is None:
        raise KeyOutsideModelFolder(bucket, key, INCOMING_PREFIX)
    return model


def validate(source: SourceObject, allowed_extensions: tuple[str, ...]) -> str:
    """Check what can be checked before any API call; return the model the key names."""
    check_prefix(source, INCOMING_PREFIX)
    if source.key.endswith("/"):
        raise FolderMarker(source.bucket, source.key)
    model = model_of(source.key, source.bucket)
    if source.extension not in allowed_extensions:
        raise UnsupportedFileType(source.bucket, source.key, allowed_extensions)
    if source.size == 0:
        raise EmptyObject(source.bucket, source.key)
    return model


def resolve_source(s3: Any, source: SourceObject) -> SourceObject:
    """The object the event means, whichever way its key was encoded.

    EventBridge sends keys as they are; S3's other notification formats URL-encode them. A key whose
    URL-decoded form is the same needs no look-up. Otherwise the key as sent wins when that object
    exists, then the decoded key; neither is ``SourceObjectNotFound`` naming both forms."""
    decoded = decoded_key(source.key)
    if decoded == source.key or object_exists(s3, source.bucket, source.key):
        return source
    if object_exists(s3, source.bucket, decoded):
        logger.info("The event's key is URL-encoded; using the decoded key", extra={"key": decoded})
        return source.with_key(decoded)
    raise SourceObjectNotFound(source.bucket, source.key, decoded)
