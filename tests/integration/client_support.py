"""What the client's integration tests share: fast client settings for the emulator on loopback."""

from __future__ import annotations

from typing import Any

from prediction_one import ClientSettings

KEY = "demo-key"
RETRIES = 2


def fast_settings(base_url: str, **overrides: Any) -> ClientSettings:
    """Client settings with short timeouts and backoff and no jitter (so retry counts are exact)."""
    values: dict[str, Any] = {
        "base_url": base_url,
        "max_retries": RETRIES,
        "backoff_factor": 0.01,
        "backoff_max": 2.0,
        "backoff_jitter": 0.0,
        "connect_timeout": 2.0,
        "read_timeout": 10.0,
    }
    values.update(overrides)
    return ClientSettings(**values)
