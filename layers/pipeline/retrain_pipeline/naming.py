"""Deterministic Step Functions execution names for one S3 object version."""

from __future__ import annotations

import hashlib
import re
import unicodedata

from retrain_pipeline.settings import INCOMING_PREFIX

MAX_NAME_LENGTH = 80
HASH_LENGTH = 20
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]+")


def _readable(key: str) -> str:
    text = key[len(INCOMING_PREFIX) :] if key.startswith(INCOMING_PREFIX) else key
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_ALLOWED.sub("-", folded).strip("-_")


def execution_name(bucket: str, key: str, version_or_etag: str | None) -> str:
    """A name made only of ``[A-Za-z0-9-_]``, at most 80 characters, the same for the same object version.

    A readable prefix of the key (after ``incoming/``) followed by a hash of bucket, key and version, so
    two different objects never share a name even when their readable prefixes do.
    """
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version_or_etag or ''}".encode()).hexdigest()[:HASH_LENGTH]
    prefix = _readable(key)[: MAX_NAME_LENGTH - HASH_LENGTH - 1].rstrip("-_")
    return f"{prefix}-{digest}" if prefix else digest
