"""boto3 clients shared by every step of a warm Lambda process."""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3

_CLIENTS_LOCK = threading.Lock()


@functools.cache
def aws_client(service: str) -> Any:
    """One boto3 client per service and process (reused across warm invocations)."""
    with _CLIENTS_LOCK:  # boto3's default session is not safe to initialise from two threads at once
        return boto3.client(service)
