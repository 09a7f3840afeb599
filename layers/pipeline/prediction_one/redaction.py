"""Keep secrets out of text: presigned URLs lose their query, API keys are masked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

SAFE_QUERY_PARAMS = frozenset({"filename", "external_process_id"})
"""Query parameters whose values are not secret and help an operator (the API's own parameters)."""

MASK = "***"

_QUERY_IN_TEXT = re.compile(r"\?(?P<query>[^\s\"'<>#=?]*=[^\s\"'<>#]*)")
_SIGNING_PARAM = re.compile(
    r"(?i)\b(?P<name>x-amz-[a-z0-9-]+|signature|awsaccesskeyid|security-token)="
    r"(?P<value>[^&\s\"'<>]*)"
)


def _safe_query(query: str) -> str:
    try:
        pairs = parse_qsl(query, keep_blank_values=True)
    except ValueError:
        return ""
    kept = [(k, v) for k, v in pairs if k in SAFE_QUERY_PARAMS]
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in kept)


def redact_url(url: str) -> str:
    """The URL without credentials, fragment or query values, except the API's own safe parameters.

    ``https://bucket.s3.amazonaws.com/a/b.csv?X-Amz-Signature=...`` becomes
    ``https://bucket.s3.amazonaws.com/a/b.csv``; ``/v1/external/retrain_jobs/upload_url?filename=a.csv``
    is kept as it is. Works on absolute URLs and on bare paths; never raises.
    """
    if not isinstance(url, str):
        return "<not a url>"
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.hostname and ":" in parts.hostname:
            netloc = f"[{parts.hostname}]"
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:
        return "<unparseable url>"
    return urlunsplit((parts.scheme, netloc, parts.path, _safe_query(parts.query), ""))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask every secret and strip query strings (keeping safe parameters) from free text."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)

    def query(match: re.Match[str]) -> str:
        safe = _safe_query(match["query"])
        return f"?{safe}" if safe else ""

    text = _QUERY_IN_TEXT.sub(query, text)
    return _SIGNING_PARAM.sub(lambda m: f"{m['name']}={MASK}", text)
