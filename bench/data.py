"""Synthetic training data and results files of an exact size, written fast and deterministically.

Every line is 64 bytes (header included), so a file of ``n`` MiB holds ``n * 16384 - 1`` data rows. Rows are
generated once per 4 MiB block; each block then gets its own row numbers by strided writes, so producing a
1 GiB file costs little more than writing it.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROW_BYTES = 64
BLOCK_ROWS = 65536
BLOCK_BYTES = ROW_BYTES * BLOCK_ROWS  # 4 MiB
MIB = 1024 * 1024
HEADER = b"row_id,temperature,humidity,pressure,wind,region,label,target"
_ROW = "{id:020d},{a:+.4f},{b:+.4f},{c:+.4f},{d:+.4f},{region},{label},{target}\n"
_BLOCK_DIGITS = 4  # the first four digits of row_id number the block; the other six the row in it


def _header_line() -> bytes:
    line = HEADER.ljust(ROW_BYTES - 1, b"_") + b"\n"
    assert len(line) == ROW_BYTES
    return line


def _template_block(seed: int = 20240501) -> bytearray:
    rng = random.Random(seed)
    regions = ["north", "south", "east_", "west_"]
    rows = []
    for i in range(BLOCK_ROWS):
        row = _ROW.format(
            id=i,
            a=rng.uniform(-9, 9),
            b=rng.uniform(-9, 9),
            c=rng.uniform(-9, 9),
            d=rng.uniform(-9, 9),
            region=rng.choice(regions),
            label=rng.choice("ABCD") * 2,
            target=rng.randint(0, 1),
        )
        rows.append(row)
    block = bytearray("".join(rows), "ascii")
    assert len(block) == BLOCK_BYTES, len(block)
    return block


def csv_chunks(size_bytes: int) -> Iterator[bytes]:
    """The file's bytes in 4 MiB chunks; ``size_bytes`` must be a positive multiple of 4 MiB."""
    if size_bytes <= 0 or size_bytes % BLOCK_BYTES:
        raise ValueError(f"size must be a positive multiple of {BLOCK_BYTES // MIB} MiB, got {size_bytes}")
    blocks = size_bytes // BLOCK_BYTES
    if blocks >= 10**_BLOCK_DIGITS:
        raise ValueError(f"size too large: at most {10**_BLOCK_DIGITS - 1} blocks of 4 MiB")
    block = _template_block()
    view = memoryview(block)
    for number in range(blocks):
        digits = f"{number:0{_BLOCK_DIGITS}d}".encode()
        for position, digit in enumerate(digits):
            block[position::ROW_BYTES] = bytes([digit]) * BLOCK_ROWS
        if number == 0:
            yield _header_line()
            yield bytes(view[ROW_BYTES:])
        else:
            yield bytes(view)


def write_results_zip(path: Path, size_bytes: int) -> int:
    """A results zip like the service's: a big stored predictions CSV plus a small metrics file.

    Returns the zip's size in bytes (``size_bytes`` plus a few hundred bytes of zip structure).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr(
            "metrics.json", json.dumps({"auc": 0.87, "accuracy": 0.81, "rows": size_bytes // 64})
        )
        with archive.open("predictions.csv", "w", force_zip64=True) as member:
            for chunk in csv_chunks(size_bytes):
                member.write(chunk)
    return path.stat().st_size


def small_csv(rows: int = 200, seed: int = 0) -> bytes:
    """A small valid training file (100–1,000,000 rows, 2–200 columns), different for each seed."""
    rng = random.Random(seed)
    lines = ["temperature,humidity,region,target"]
    for _ in range(rows):
        lines.append(
            f"{rng.uniform(-5, 35):.2f},{rng.uniform(0, 100):.1f},{rng.choice('NSEW')},{rng.randint(0, 1)}"
        )
    return ("\n".join(lines) + "\n").encode()
