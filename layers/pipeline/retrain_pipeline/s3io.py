"""Streaming S3 I/O in constant memory.

- ``open_source``: a GetObject body that reports its length, so the upload PUT carries Content-Length
  without reading the file into memory or onto disk.
- ``S3MultipartWriter``: a write-only sink for downloads; parts of 8 MiB growing to 64 MiB, a single
  PutObject when the whole file fits in one part, ``abort()`` on error.
- ``S3RangeReader`` / ``zip_entries``: a seekable reader over ranged GETs, so ``zipfile`` reads a zip's
  central directory straight from S3 without downloading the archive.
- ``object_exists``, ``write_json`` / ``read_json``: small objects (summaries, failure records).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from types import TracebackType
from typing import Any

MIB = 1024 * 1024
MIN_PART_SIZE = 8 * MIB
MAX_PART_SIZE = 64 * MIB
S3_MIN_PART_SIZE = 5 * MIB
S3_MAX_PARTS = 10_000
PARTS_PER_SIZE_STEP = 1_000
RANGE_BLOCK_SIZE = 64 * 1024


def _version_args(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


class S3ObjectStream:
    """A GetObject body that knows its length (``len()``) and position (``tell()``)."""

    def __init__(self, body: Any, length: int) -> None:
        self._body = body
        self._length = length
        self._position = 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        data = self._body.read(None if size is None or size < 0 else size)
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> S3ObjectStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_source(s3: Any, bucket: str, key: str, version_id: str | None = None) -> S3ObjectStream:
    """Open one object version for streaming."""
    response = s3.get_object(Bucket=bucket, Key=key, **_version_args(version_id))
    return S3ObjectStream(response["Body"], int(response["ContentLength"]))


def part_size_for(part_number: int, base: int = MIN_PART_SIZE) -> int:
    """Part size for a 1-based part number: doubles every 1,000 parts, capped at 64 MiB."""
    return min(MAX_PART_SIZE, base * 2 ** ((part_number - 1) // PARTS_PER_SIZE_STEP))


class S3MultipartWriter:
    """Write bytes to one S3 object; ``close()`` completes it, ``abort()`` discards it.

    Kept instead of boto3's transfer manager on purpose. The Prediction One client pushes a download into
    a writer, while ``upload_fileobj`` pulls from a file object: with a pipe between the two threads,
    8 MiB parts, ``max_concurrency=2`` and two parts read ahead, ``make bench`` (transfer, a 1 GiB result)
    measured the Archive step at 143.4 MiB peak RSS against 126.6 MiB for this writer, over the 128 MiB
    the step must stay within (throughput was no obstacle: 1.49x curl's against 0.94x, on a loaded
    machine). The transfer manager also reads a non-seekable stream to its end after a part has failed.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        part_size: int = MIN_PART_SIZE,
    ) -> None:
        if part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {S3_MIN_PART_SIZE} bytes (S3's minimum part size)")
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self._content_type = content_type
        self._base_part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._closed = False
        self.bytes_written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise ValueError(f"write to s3://{self.bucket}/{self.key} after close")
        self._buffer += data
        self.bytes_written += len(data)
        while len(self._buffer) >= self._next_part_size():
            size = self._next_part_size()
            part = bytes(memoryview(self._buffer)[:size])  # one copy, not two
            del self._buffer[:size]
            self._upload_part(part)
        return len(data)

    def _next_part_size(self) -> int:
        return part_size_for(len(self._parts) + 1, self._base_part_size)

    def _upload_part(self, data: bytes) -> None:
        if self._upload_id is None:
            created = self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self._content_type
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        if number > S3_MAX_PARTS:
            raise ValueError(f"s3://{self.bucket}/{self.key} would need more than {S3_MAX_PARTS} parts")
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def close(self) -> None:
        """Finish the object (a single PutObject if no part was needed)."""
        if self._closed:
            return
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), ContentType=self._content_type
            )
        else:
            if self._buffer:
                self._upload_part(bytes(self._buffer))
            self._s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buffer = bytearray()
        self._closed = True

    def abort(self) -> None:
        """Discard everything written; safe to call more than once."""
        self._buffer = bytearray()
        if self._upload_id is not None and not self._closed:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        self._closed = True

    def __enter__(self) -> S3MultipartWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only file over ranged GETs of one object version."""

    def __init__(
        self, s3: Any, bucket: str, key: str, version_id: str | None = None, size: int | None = None
    ) -> None:
        super().__init__()
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._version = _version_args(version_id)
        if size is None:
            size = int(s3.head_object(Bucket=bucket, Key=key, **self._version)["ContentLength"])
        self._size = size
        self._position = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = base + offset
        if position < 0:
            raise OSError(f"negative seek position in s3://{self._bucket}/{self._key}")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._position >= self._size or not len(view):
            return 0
        end = min(self._position + len(view), self._size) - 1
        response = self._s3.get_object(
            Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end}", **self._version
        )
        self.requests += 1
        data = response["Body"].read()
        count = len(data)
        view[:count] = data
        self._position += count
        return count


def zip_entries(
    s3: Any, bucket: str, key: str, version_id: str | None = None, size: int | None = None
) -> list[str]:
    """The entry names of a zip in S3, read from its central directory (zipfile.BadZipFile if not a zip)."""
    raw = S3RangeReader(s3, bucket, key, version_id, size)
    with (
        io.BufferedReader(raw, buffer_size=RANGE_BLOCK_SIZE) as buffered,
        zipfile.ZipFile(buffered) as archive,
    ):
        return archive.namelist()


def object_exists(s3: Any, bucket: str, key: str) -> bool:
    """Whether ``key`` names an object, by a one-key listing: with ``s3:ListBucket`` scoped to a prefix this
    answers "missing" where a HEAD or GET without the unscoped permission would answer 403."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(item.get("Key") == key for item in listed.get("Contents", []))


def write_json(s3: Any, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, ensure_ascii=False).encode(),
        ContentType="application/json",
    )


def read_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
