"""UTC times as the pipeline reads and writes them: ISO 8601 in, aware UTC ``datetime`` out, and back."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with a ``Z`` suffix and millisecond precision."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """An ISO 8601 time (``Z``, an offset, or none, which means UTC) as an aware ``datetime`` in UTC.

    ValueError when ``value`` is not ISO 8601.
    """
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
