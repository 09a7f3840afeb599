"""Receive a request body to a file at wire speed: read and hash here, write in a thread."""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
BUFFERS = 4  # memory in use: BUFFERS * CHUNK, whatever the body's size


class BodyEnded(Exception):
    """The client closed the connection before ``length`` bytes arrived."""


class StoreFailed(Exception):
    """Writing the received bytes to disk failed (the cause is chained)."""


class Progress:
    """How many body bytes arrived so far."""

    def __init__(self) -> None:
        self.value = 0


def receive_to_file(
    read_into: Callable[[memoryview], int | None], length: int, target: Path, progress: Progress | None = None
) -> str:
    """Copy exactly ``length`` bytes from ``read_into`` to ``target``; returns their SHA-256 (hex).

    The file is written by a second thread from a small pool of buffers, so reading from the socket, hashing
    and writing to disk overlap. Raises ``BodyEnded`` on a short body, ``StoreFailed`` when the disk fails,
    or the reader's OSError.
    """
    digest = hashlib.sha256()
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    for _ in range(BUFFERS if length > CHUNK else 1):
        free.put(bytearray(min(CHUNK, max(length, 1))))
    filled: queue.SimpleQueue[tuple[bytearray, int] | None] = queue.SimpleQueue()
    failures: list[OSError] = []

    def write_all(out: BinaryIO) -> None:
        while (item := filled.get()) is not None:
            buffer, size = item
            if not failures:
                try:
                    out.write(memoryview(buffer)[:size])
                except OSError as exc:
                    failures.append(exc)
            free.put(buffer)

    with target.open("wb") as out:
        writer = threading.Thread(target=write_all, args=(out,), name="emulator-upload-writer", daemon=True)
        writer.start()
        remaining = length
        try:
            while remaining and not failures:
                buffer = free.get()
                view = memoryview(buffer)[: min(len(buffer), remaining)]
                size = read_into(view)
                if not size:
                    free.put(buffer)
                    raise BodyEnded(length - remaining)
                digest.update(view[:size])
                filled.put((buffer, size))
                remaining -= size
                if progress is not None:
                    progress.value += size
        finally:
            filled.put(None)
            writer.join()
    if failures:
        raise StoreFailed(str(failures[0])) from failures[0]
    return digest.hexdigest()
