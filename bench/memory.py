"""Resident memory of the current process, from ``/proc/self/status`` (Linux)."""

from __future__ import annotations

import re
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+)\s+kB$", _STATUS.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{field} missing from {_STATUS}")
    return int(match.group(1))


def rss_mib() -> float:
    """Resident set size now."""
    return _kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    """The high-water mark of the resident set size since the process started."""
    return _kib("VmHWM") / 1024
