"""Test data: tables and zips for uploads. Synthetic training tables are the demo's own
(``p1_retrain.local.data.synthetic_csv``); these are the small, predictable ones tests compare against."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable, Mapping

from p1_retrain.local.data import synthetic_csv

__all__ = ["synthetic_csv", "table", "zip_names", "zip_of"]


def table(
    rows: int = 120,
    columns: int = 3,
    *,
    header: Iterable[str] | None = None,
    cell: Callable[[int, int], object] | None = None,
    delimiter: str = ",",
) -> bytes:
    """A header line plus ``rows`` data lines, each ended by a newline. ``header`` names the columns
    (``col0``, ``col1``, ... by default, ``columns`` of them); ``cell(row, column)`` gives a field (by
    default ``row * columns + column``)."""
    names = list(header) if header is not None else [f"col{column}" for column in range(columns)]
    width = len(names)
    value = cell or (lambda row, column: row * width + column)
    lines = [delimiter.join(names)]
    lines += [delimiter.join(str(value(row, column)) for column in range(width)) for row in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def zip_of(entries: Mapping[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding ``entries`` (archive name -> content), in their order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_names(data: bytes) -> list[str]:
    """The entry names of a zip, in archive order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()
