"""S3-like presigned URLs: HMAC-signed method, path and every query parameter, checked on every use.

As with S3's query-string signing, the signature covers the whole canonical query (each parameter name
and value, sorted, ``X-Amz-Signature`` aside): a parameter added, removed, repeated or changed after
signing — ``&response-content-type=text/html`` appended, say — makes the URL answer 403
``SignatureDoesNotMatch``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from p1_retrain.emulator import errors

ALGORITHM = "AWS4-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
ACCESS_KEY_ID = "EMULATORSTORAGE"
REGION = "ap-northeast-1"
REQUIRED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature")
SIGNATURE = "X-Amz-Signature"


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Every query parameter but the signature, percent-encoded as SigV4 does and sorted."""
    encoded = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in pairs if name != SIGNATURE
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def amz_date(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime(DATE_FORMAT)


def http_date(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Signer:
    """Signs and verifies presigned storage URLs with a per-server secret."""

    secret: bytes

    @classmethod
    def random(cls) -> Signer:
        return cls(secrets.token_bytes(32))

    def _signature(self, method: str, path: str, pairs: Iterable[tuple[str, str]]) -> str:
        text = "\n".join((method, path, canonical_query(pairs)))
        return hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()

    def sign(self, base_url: str, method: str, path: str, now: float, expires_seconds: int) -> str:
        """A URL for ``method path`` valid ``expires_seconds`` from ``now`` (``path`` unquoted)."""
        date = amz_date(now)
        credential = f"{ACCESS_KEY_ID}/{date[:8]}/{REGION}/s3/aws4_request"
        expires = str(int(expires_seconds))
        params = {
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": credential,
            "X-Amz-Date": date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
        }
        params[SIGNATURE] = self._signature(method, path, params.items())
        return f"{base_url}{quote(path)}?{urlencode(params)}"

    def verify(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        now: float,
        pairs: Iterable[tuple[str, str]] | None = None,
    ) -> None:
        """Raise the S3-style error a real bucket would answer for a bad, foreign or expired URL.

        ``pairs``: the query parameters as they came, repeats included (default: ``query``'s items).
        """
        for name in REQUIRED:
            if not query.get(name):
                raise errors.missing_query_auth(name)
        if query["X-Amz-Algorithm"] != ALGORITHM:
            raise errors.missing_query_auth(f"X-Amz-Algorithm={ALGORITHM}")
        expected = self._signature(method, path, list(pairs) if pairs is not None else query.items())
        if not hmac.compare_digest(expected, query[SIGNATURE]):
            raise errors.signature_mismatch()
        try:
            signed_at = datetime.strptime(query["X-Amz-Date"], DATE_FORMAT).replace(tzinfo=UTC).timestamp()
            lifetime = int(query["X-Amz-Expires"])
        except ValueError as exc:  # cannot happen for a URL we signed; kept for hand-made ones
            raise errors.signature_mismatch() from exc
        if now > signed_at + lifetime:
            raise errors.request_expired(lifetime, http_date(signed_at + lifetime), http_date(now))

    @staticmethod
    def expired(query: dict[str, str], now: float) -> errors.StorageError:
        """The answer of an injected ``expired_url`` fault for this URL."""
        lifetime = int(query.get("X-Amz-Expires") or 0) if (query.get("X-Amz-Expires") or "").isdigit() else 0
        return errors.request_expired(lifetime, http_date(now - 1), http_date(now))
