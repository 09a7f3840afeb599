"""Files Prediction One will not read as text, told apart before any API call.

Prediction One reads CSV/TSV in UTF-8 (with or without a byte-order mark) or Shift-JIS. What can be
told cheaply from a file's first block is refused here with ``UnsupportedEncoding``, naming what the
file is and how to re-save it, instead of letting the service misread it later ("record 3 has 1
column"): a UTF-16 or UTF-32 byte-order mark (Excel's "Unicode text" export), NUL bytes (UTF-16 without
a mark, or binary data), or the signature of a binary format (an Excel workbook, a zip, gzip, PDF, ...)
behind a ``.csv``/``.tsv`` name. For a zip, the first bytes of each entry are checked the same way.
Anything else (UTF-8, Shift-JIS, other single- or multi-byte text without NULs) passes: only the service
can judge it.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from retrain_pipeline.errors import UnsupportedEncoding
from retrain_pipeline.s3io import RANGE_BLOCK_SIZE, S3RangeReader

FIRST_BLOCK_BYTES = 64 * 1024
MEMBER_HEAD_BYTES = 4096
MAX_MEMBERS_CHECKED = 50
TEXT_EXTENSIONS = (".csv", ".tsv", ".txt")

# Longest first: a UTF-32 LE mark begins with the UTF-16 LE one.
_BYTE_ORDER_MARKS = (
    (b"\x00\x00\xfe\xff", "UTF-32 BE text (it starts with a UTF-32 byte-order mark)"),
    (b"\xff\xfe\x00\x00", "UTF-32 LE text (it starts with a UTF-32 byte-order mark)"),
    (b"\xfe\xff", "UTF-16 BE text (it starts with a UTF-16 byte-order mark)"),
    (
        b"\xff\xfe",
        'UTF-16 LE text (it starts with a UTF-16 byte-order mark, as Excel\'s "Unicode text" saves)',
    ),
)
_SIGNATURES = (
    (b"%PDF-", "a PDF document, not CSV text"),
    (b"\x1f\x8b", "a gzip-compressed file, not CSV text"),
    (b"BZh", "a bzip2-compressed file, not CSV text"),
    (b"\xfd7zXZ\x00", "an xz-compressed file, not CSV text"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive, not CSV text"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an Excel 97-2003 workbook (.xls) or another Office file, not CSV text",
    ),
    (b"PAR1", "a Parquet file, not CSV text"),
)


def sniff(block: bytes) -> str | None:
    """What ``block`` (a file's first bytes) shows the file to be, when that is not CSV text Prediction One
    reads; ``None`` when it may be (UTF-8, Shift-JIS, ...)."""
    for mark, found in _BYTE_ORDER_MARKS:
        if block.startswith(mark):
            return found
    if block.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        if b"[Content_Types].xml" in block and b"xl/" in block:
            return "an Excel workbook (.xlsx), not CSV text"
        return "a zip archive, not CSV text"
    for signature, found in _SIGNATURES:
        if block.startswith(signature):
            return found
    nuls = block.count(0)
    if not nuls:
        return None
    quarter = max(1, len(block) // 4)
    by_position = [block[offset::4].count(0) for offset in range(4)]
    if by_position[2] > 0.9 * quarter and by_position[3] > 0.9 * quarter and by_position[0] < 0.1 * quarter:
        return "UTF-32 LE text without a byte-order mark (three of every four bytes are mostly NUL)"
    if by_position[0] > 0.9 * quarter and by_position[1] > 0.9 * quarter and by_position[3] < 0.1 * quarter:
        return "UTF-32 BE text without a byte-order mark (three of every four bytes are mostly NUL)"
    even = block[0::2].count(0)
    odd = block[1::2].count(0)
    half = max(1, len(block) // 2)
    if odd > 0.3 * half and even < 0.05 * half:
        return "UTF-16 LE text without a byte-order mark (every other byte is NUL)"
    if even > 0.3 * half and odd < 0.05 * half:
        return "UTF-16 BE text without a byte-order mark (every other byte is NUL)"
    return f"binary data, not CSV text ({nuls} NUL bytes in its first {len(block)} bytes)"


def _first_block(s3: Any, source: Any) -> bytes:
    extra = {"VersionId": source.version_id} if source.version_id else {}
    answer = s3.get_object(
        Bucket=source.bucket, Key=source.key, Range=f"bytes=0-{FIRST_BLOCK_BYTES - 1}", **extra
    )
    return answer["Body"].read(FIRST_BLOCK_BYTES)


def _check_zip_members(s3: Any, source: Any) -> None:
    raw = S3RangeReader(s3, source.bucket, source.key, source.version_id, source.size)
    try:
        with (
            io.BufferedReader(raw, buffer_size=RANGE_BLOCK_SIZE) as buffered,
            zipfile.ZipFile(buffered) as archive,
        ):
            members = [info for info in archive.infolist() if not info.is_dir() and info.file_size]
            for info in members[:MAX_MEMBERS_CHECKED]:
                if not info.filename.lower().endswith(TEXT_EXTENSIONS):
                    continue
                with archive.open(info) as member:
                    found = sniff(member.read(MEMBER_HEAD_BYTES))
                if found:
                    raise UnsupportedEncoding(source.bucket, source.key, found, member=info.filename)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError):
        return  # not a readable zip (the layout check names that), or encrypted: only the service can tell


def check_encoding(s3: Any, source: Any) -> None:
    """Raise ``UnsupportedEncoding`` when the object cannot be CSV/TSV text Prediction One reads.

    ``source``: a ``SourceObject`` (bucket, key, version_id, size, extension). One ranged GET for a
    CSV/TSV; for a zip, its central directory and the first bytes of each text entry.
    """
    if source.extension == ".zip":
        _check_zip_members(s3, source)
        return
    found = sniff(_first_block(s3, source))
    if found:
        raise UnsupportedEncoding(source.bucket, source.key, found)
