"""Streaming S3 reads and writes (moto)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from botocore.exceptions import ClientError
from retrain_pipeline import s3io
from retrain_pipeline.s3io import (
    IN_MEMORY_PARTS,
    MIB,
    PART_SIZE,
    S3RangeReader,
    open_source,
    transfer_config,
    upload_stream,
    zip_entries,
)

S3_MIN_PART_SIZE = 5 * MIB

BUCKET = "data-bucket"


def test_source_stream_reports_length_and_reads_the_version(s3: Any) -> None:
    first = s3.put_object(Bucket=BUCKET, Key="incoming/demo/a.csv", Body=b"first version")
    s3.put_object(Bucket=BUCKET, Key="incoming/demo/a.csv", Body=b"second")
    with open_source(s3, BUCKET, "incoming/demo/a.csv", first["VersionId"]) as stream:
        assert len(stream) == len(b"first version")
        assert stream.tell() == 0
        assert stream.read(5) == b"first"
        assert stream.tell() == 5
        assert stream.read() == b" version"
    with open_source(s3, BUCKET, "incoming/demo/a.csv") as latest:
        assert latest.read() == b"second"


def test_parts_are_within_s3s_limits() -> None:
    config = transfer_config()
    assert config.multipart_chunksize == PART_SIZE >= S3_MIN_PART_SIZE
    assert config.multipart_threshold == PART_SIZE  # one PutObject when the whole file fits in one part
    assert 10_000 * PART_SIZE >= 64 * 1024 * MIB  # S3's 10,000 parts hold any result a Lambda can move
    assert config.max_in_memory_upload_chunks == IN_MEMORY_PARTS  # what bounds the memory


def _writes(*pieces: bytes | memoryview, then: BaseException | None = None) -> Any:
    def produce(writer: Any) -> int:
        for piece in pieces:
            writer.write(piece)
        if then is not None:
            raise then
        return sum(len(piece) for piece in pieces)

    return produce


def test_small_file_is_one_put(s3: Any) -> None:
    written = upload_stream(s3, BUCKET, "results/x/small.bin", _writes(b"abc", memoryview(b"def")))
    assert written == 6
    assert s3.get_object(Bucket=BUCKET, Key="results/x/small.bin")["Body"].read() == b"abcdef"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_large_file_goes_in_parts(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3io, "PART_SIZE", 5 * MIB)
    data = bytes(range(256)) * (4 * 1024 * 11)  # 11 MiB
    step = 1024 * 1024 + 7
    pieces = [data[start : start + step] for start in range(0, len(data), step)]
    upload_stream(s3, BUCKET, "results/x/large.bin", _writes(*pieces), content_type="application/zip")
    got = s3.get_object(Bucket=BUCKET, Key="results/x/large.bin")
    assert got["Body"].read() == data
    assert got["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 1 MiB
    assert got["ContentType"] == "application/zip"


def test_error_aborts_the_upload(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3io, "PART_SIZE", 5 * MIB)
    sinks: list[Any] = []

    def produce(writer: Any) -> int:
        sinks.append(writer)
        writer.write(b"x" * (6 * MIB))
        raise RuntimeError("broken download")

    with pytest.raises(RuntimeError, match="broken"):
        upload_stream(s3, BUCKET, "results/x/broken.bin", produce)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/x/broken.bin")
    with pytest.raises(ValueError, match="after close"):
        sinks[0].write(b"more")


def test_an_upload_failure_stops_the_download_with_s3s_error(s3: Any) -> None:
    writes: list[int] = []

    def produce(writer: Any) -> int:
        for _ in range(64):  # far more than the pipe and the transfer manager hold
            writes.append(writer.write(b"y" * MIB))
        return 64 * MIB

    with pytest.raises(ClientError, match="NoSuchBucket"):
        upload_stream(s3, "no-such-bucket", "results/x/lost.bin", produce)
    assert len(writes) < 64  # the download stopped at the failure, it did not run to its end


def _zip(names: list[str], padding: int = 0) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in names:
            archive.writestr(name, "a,b\n1,2\n" + "x" * padding)
    return buffer.getvalue()


def test_zip_entries_come_from_ranged_reads(s3: Any) -> None:
    body = _zip(["train_src/t.csv", "eval_src/e.csv"], padding=2 * MIB)
    s3.put_object(Bucket=BUCKET, Key="incoming/demo/big.zip", Body=body)
    raw = S3RangeReader(s3, BUCKET, "incoming/demo/big.zip")
    with io.BufferedReader(raw, buffer_size=64 * 1024) as buffered, zipfile.ZipFile(buffered) as archive:
        assert archive.namelist() == ["train_src/t.csv", "eval_src/e.csv"]
    assert raw.requests <= 4  # the central directory only, never the 4 MiB of data
    assert zip_entries(s3, BUCKET, "incoming/demo/big.zip", size=len(body)) == [
        "train_src/t.csv",
        "eval_src/e.csv",
    ]


def test_range_reader_seeks_and_reads_exact_bytes(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="k.bin", Body=b"0123456789")
    reader = S3RangeReader(s3, BUCKET, "k.bin")
    assert reader.seek(-3, io.SEEK_END) == 7
    assert reader.read(10) == b"789"
    assert reader.read(1) == b""
    reader.seek(2)
    assert reader.read(3) == b"234"
    with pytest.raises(OSError, match="negative seek"):
        reader.seek(-1)


def test_not_a_zip(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="incoming/demo/fake.zip", Body=b"name,value\n" * 100)
    with pytest.raises(zipfile.BadZipFile):
        zip_entries(s3, BUCKET, "incoming/demo/fake.zip")
