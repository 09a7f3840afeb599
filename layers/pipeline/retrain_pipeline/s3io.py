"""Streaming S3 I/O in constant memory.

- ``open_source``: a GetObject body that reports its length, so the upload PUT carries Content-Length
  without reading the file into memory or onto disk.
- ``upload_stream``: a download written into S3 by boto3's transfer manager (``upload_fileobj``), in
  constant memory: one PutObject when it fits in one part, else a multipart upload, aborted on error.
- ``S3RangeReader`` / ``zip_entries``: a seekable reader over ranged GETs, so ``zipfile`` reads a zip's
  central directory straight from S3 without downloading the archive.
- ``object_exists``, ``write_json`` / ``read_json``: small objects (summaries, failure records).
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from boto3.s3.transfer import TransferConfig, create_transfer_manager

MIB = 1024 * 1024
# Uploads of a download (the Archive steps): 8 MiB parts (10,000 parts: up to 78 GiB), two in flight, two
# more read ahead, one download chunk waiting in the pipe. Measured by `make bench` (transfer): see
# docs/development.md for the figures.
PART_SIZE = 8 * MIB
UPLOAD_THREADS = 2
IN_MEMORY_PARTS = 2
PIPE_CAPACITY = 8 * MIB
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


class UploadStopped(Exception):
    """Raised to the transfer manager's reader once the upload itself has failed (never to the caller)."""


class _Pipe:
    """Bytes written by one thread and read by another, at most ``capacity`` bytes held in between.

    The Prediction One client pushes a download into a writer; boto3's transfer manager pulls what it
    uploads from a file object: the pipe joins the two. ``close(error)`` ends the stream (the reader sees
    ``error`` once the bytes before it are read); ``cancel(error)`` makes the writer's next ``write`` raise
    it (the upload failed, nothing more will be read)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._closed = False
        self._error: BaseException | None = None
        self._cancelled: BaseException | None = None
        self._stopped: Callable[[], bool] = lambda: False
        self._changed = threading.Condition()

    def stop_when(self, stopped: Callable[[], bool]) -> None:
        """Make ``read`` fail once ``stopped()`` is true (the upload failed: stop reading the download)."""
        self._stopped = stopped

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        chunk = bytes(data)
        with self._changed:
            while self._held >= self._capacity and self._cancelled is None:
                self._changed.wait()
            if self._closed:
                raise ValueError("write after close")
            if self._cancelled is not None:
                raise self._cancelled
            self._chunks.append(chunk)
            self._held += len(chunk)
            self._changed.notify_all()
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        if self._stopped():
            raise UploadStopped("the upload failed; the rest of the stream is not read")
        pieces: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        with self._changed:
            while wanted is None or got < wanted:
                while not self._chunks and not self._closed:
                    self._changed.wait()
                if not self._chunks:  # closed and drained
                    if self._error is not None and not pieces:
                        raise self._error
                    break
                chunk = self._chunks.popleft()
                if wanted is not None and got + len(chunk) > wanted:
                    keep = wanted - got
                    self._chunks.appendleft(chunk[keep:])
                    chunk = chunk[:keep]
                self._held -= len(chunk)
                pieces.append(chunk)
                got += len(chunk)
                self._changed.notify_all()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self, error: BaseException | None = None) -> None:
        with self._changed:
            self._closed = True
            self._error = error
            self._changed.notify_all()

    def cancel(self, error: BaseException) -> None:
        with self._changed:
            self._cancelled = error
            self._chunks.clear()
            self._held = 0
            self._changed.notify_all()


def transfer_config() -> TransferConfig:
    """boto3's transfer manager, sized for a Lambda of 128 MiB: parts of PART_SIZE, UPLOAD_THREADS of them
    in flight, at most IN_MEMORY_PARTS read ahead (what bounds the memory of a non-seekable upload)."""
    config = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=UPLOAD_THREADS,
        preferred_transfer_client="classic",  # s3transfer, whatever else is installed
    )
    config.max_in_memory_upload_chunks = IN_MEMORY_PARTS  # s3transfer's setting; boto3 does not expose it
    return config


def upload_stream(
    s3: Any,
    bucket: str,
    key: str,
    produce: Callable[[_Pipe], int],
    *,
    content_type: str = "application/octet-stream",
) -> int:
    """Upload what ``produce(writer)`` writes (it returns the byte count) to one S3 object, in constant
    memory, with boto3's transfer manager (as ``upload_fileobj``): a single PutObject when it fits in one
    part, else a multipart upload that the transfer manager aborts when anything fails. An error of
    ``produce`` is raised unchanged, and so is one of the upload (the writer's next ``write`` raises it)."""
    pipe = _Pipe(PIPE_CAPACITY)
    failed: list[BaseException] = []

    def upload() -> None:
        # What ``s3.upload_fileobj(pipe, bucket, key, ExtraArgs, Config)`` does, keeping its future: the
        # transfer manager reads a non-seekable stream to its end even after a part failed, so the pipe
        # asks the future whether the upload is still alive before each read.
        try:
            with create_transfer_manager(s3, transfer_config()) as manager:
                future = manager.upload(pipe, bucket, key, extra_args={"ContentType": content_type})
                pipe.stop_when(future.done)
                future.result()
        except BaseException as error:  # noqa: BLE001 - handed to the writer's thread, raised there
            failed.append(error)
            pipe.cancel(error)

    uploader = threading.Thread(target=upload, name=f"upload s3://{bucket}/{key}", daemon=True)
    uploader.start()
    try:
        size = produce(pipe)
    except BaseException as error:
        pipe.close(error)  # the transfer manager reads the error, aborts and stops
        uploader.join()
        raise
    pipe.close()
    uploader.join()
    if failed:
        raise failed[0]
    return size


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
