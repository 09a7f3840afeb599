"""Input checks on a stored upload, streamed in constant memory: CSV/TSV limits, the train + eval zip layout.

Rows are the non-blank records after the header line; columns are the fields of the header. Quoted fields may
hold delimiters and line breaks. Bytes are read as Latin-1, which keeps the structure of any ASCII-compatible
encoding (UTF-8 with or without BOM, Shift_JIS) without decoding errors.

Text the service cannot read is reported as an encoding problem, not as a column count: the first block of
each table must decode as UTF-8 or Shift-JIS and hold no NUL bytes (so UTF-16/UTF-32, with or without a
byte-order mark, and binary files fail with ``<name>: cannot be read as text: ...``). The API documents no
error row for this; like the data-limit checks it fails the job (``job_failed`` with that message).
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

TABLE_EXTENSIONS = (".csv", ".tsv")
UPLOAD_EXTENSIONS = (*TABLE_EXTENSIONS, ".zip")
TRAIN_FOLDER = "train_src"
EVAL_FOLDER = "eval_src"
_STOP_CHECK_EVERY = 65536
_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = (".DS_Store", "Thumbs.db")


@dataclass(frozen=True)
class DataLimits:
    """The product's published data limits; every bound is inclusive."""

    min_rows: int = 100
    max_rows: int = 1_000_000
    min_columns: int = 2
    max_columns: int = 200


@dataclass(frozen=True)
class TableStats:
    name: str
    rows: int
    columns: int


@dataclass
class ValidationResult:
    """``message`` is None when the upload is acceptable; ``tables`` describes what was counted."""

    message: str | None
    tables: list[TableStats] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.message is None


class ValidationCancelled(Exception):
    """The server stopped while a check was running."""


class InvalidData(Exception):
    """One failed check; its text becomes the job's ``message``."""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


ENCODING_BLOCK = 65536
_MARKS = (
    (b"\x00\x00\xfe\xff", "UTF-32 BE"),
    (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    (b"\xfe\xff", "UTF-16 BE"),
    (b"\xff\xfe", "UTF-16 LE"),
)


def encoding_problem(block: bytes) -> str | None:
    """Why ``block`` (a table's first bytes) is not UTF-8 or Shift-JIS text; None when it is."""
    for mark, name in _MARKS:
        if block.startswith(mark):
            return f"it is {name} (byte-order mark); only UTF-8 and Shift-JIS are read"
    if b"\x00" in block:
        return "it holds NUL bytes (UTF-16/UTF-32 or binary data); only UTF-8 and Shift-JIS are read"
    for codec in ("utf-8", "cp932"):
        try:
            codecs.getincrementaldecoder(codec)().decode(block, final=False)
            return None
        except UnicodeDecodeError:
            continue
    return "its bytes are neither UTF-8 nor Shift-JIS"


class _Replayed(io.RawIOBase):
    """``head`` then the rest of ``stream``: the encoding check reads ahead without losing bytes."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head.nbytes:
            count = min(len(view), self._head.nbytes)
            view[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


def _records(stream: IO[bytes], delimiter: str) -> Iterable[list[str]]:
    text = io.TextIOWrapper(stream, encoding="latin-1", newline="")
    return csv.reader(text, delimiter=delimiter, strict=False)


def count_table(
    stream: IO[bytes], name: str, limits: DataLimits, should_stop: Callable[[], bool] = lambda: False
) -> TableStats:
    """Count a CSV/TSV stream's rows and columns and check them against ``limits``."""
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    head = stream.read(ENCODING_BLOCK)
    problem = encoding_problem(head)
    if problem:
        raise InvalidData(f"{name}: cannot be read as text: {problem}")
    reader = _records(io.BufferedReader(_Replayed(head, stream)), delimiter)
    header: list[str] | None = None
    rows = 0
    line = 0
    try:
        for line, record in enumerate(reader, start=1):
            if not record or record == [""]:
                continue
            if header is None:
                header = record
                columns = len(header)
                if columns < limits.min_columns:
                    raise InvalidData(
                        f"{name}: {_plural(columns, 'column')}; at least {limits.min_columns} required"
                    )
                if columns > limits.max_columns:
                    raise InvalidData(f"{name}: {columns} columns; at most {limits.max_columns} allowed")
                continue
            if len(record) != len(header):
                raise InvalidData(
                    f"{name}: record {line} has {_plural(len(record), 'column')}; header has {len(header)}"
                )
            rows += 1
            if rows > limits.max_rows:
                raise InvalidData(
                    f"{name}: more than {limits.max_rows} rows; at most {limits.max_rows} allowed"
                )
            if rows % _STOP_CHECK_EVERY == 0 and should_stop():
                raise ValidationCancelled(name)
    except csv.Error as exc:
        raise InvalidData(
            f"{name}: not a readable {'TSV' if delimiter == chr(9) else 'CSV'} near record {line + 1} ({exc})"
        ) from exc
    if header is None:
        raise InvalidData(f"{name}: empty file; a header line and at least {limits.min_rows} rows required")
    if rows < limits.min_rows:
        raise InvalidData(f"{name}: {_plural(rows, 'row')}; at least {limits.min_rows} required")
    return TableStats(name, rows, len(header))


def _is_junk(name: str) -> bool:
    base = PurePosixPath(name).name
    return name.startswith(_JUNK_PREFIXES) or base in _JUNK_NAMES or base.startswith("._")


def _zip_member(archive: zipfile.ZipFile, filename: str, folder: str) -> zipfile.ZipInfo:
    found = [
        info
        for info in archive.infolist()
        if not info.is_dir() and not _is_junk(info.filename) and info.filename.startswith(f"{folder}/")
    ]
    if not found:
        raise InvalidData(f"{filename}: no {folder}/<name>.csv or .tsv inside")
    if len(found) > 1:
        raise InvalidData(f"{filename}: {folder}/ holds {len(found)} files; exactly one expected")
    member = found[0]
    if "/" in member.filename[len(folder) + 1 :]:
        raise InvalidData(f"{filename}: {member.filename} is nested; expected {folder}/<name>.csv or .tsv")
    if not member.filename.lower().endswith(TABLE_EXTENSIONS):
        raise InvalidData(f"{member.filename}: unsupported file type; expected .csv or .tsv")
    return member


def _check_zip(
    path: Path, filename: str, limits: DataLimits, should_stop: Callable[[], bool]
) -> list[TableStats]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidData(f"{filename}: not a valid zip file") from exc
    with archive:
        members = [_zip_member(archive, filename, folder) for folder in (TRAIN_FOLDER, EVAL_FOLDER)]
        tables = []
        for member in members:
            try:
                with archive.open(member) as stream:
                    tables.append(count_table(stream, member.filename, limits, should_stop))
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, zlib.error) as exc:
                raise InvalidData(f"{member.filename}: cannot be read from {filename} ({exc})") from exc
    return tables


def validate_upload(
    path: Path, filename: str, limits: DataLimits, should_stop: Callable[[], bool] = lambda: False
) -> ValidationResult:
    """Check a stored upload named ``filename`` (the name given to endpoint 1) against the data limits."""
    lowered = filename.lower()
    try:
        if lowered.endswith(".zip"):
            return ValidationResult(None, _check_zip(path, filename, limits, should_stop))
        if lowered.endswith(TABLE_EXTENSIONS):
            with path.open("rb") as stream:
                return ValidationResult(None, [count_table(stream, filename, limits, should_stop)])
        raise InvalidData(f"{filename}: unsupported file type; expected .csv, .tsv or .zip")
    except InvalidData as exc:
        return ValidationResult(str(exc))
