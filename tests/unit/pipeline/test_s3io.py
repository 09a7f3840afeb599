"""Streaming S3 reads and writes (moto)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from retrain_pipeline.s3io import (
    MAX_PART_SIZE,
    MIB,
    MIN_PART_SIZE,
    S3MultipartWriter,
    S3RangeReader,
    open_source,
    part_size_for,
    zip_entries,
)

from tests.testdata import zip_of

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


def test_part_sizes_grow_and_cap() -> None:
    assert part_size_for(1) == MIN_PART_SIZE
    assert part_size_for(1000) == MIN_PART_SIZE
    assert part_size_for(1001) == 2 * MIN_PART_SIZE
    assert part_size_for(9999) == MAX_PART_SIZE


def test_small_file_is_one_put(s3: Any) -> None:
    with S3MultipartWriter(s3, BUCKET, "results/x/small.bin") as writer:
        writer.write(b"abc")
        writer.write(memoryview(b"def"))
    assert writer.bytes_written == 6
    assert s3.get_object(Bucket=BUCKET, Key="results/x/small.bin")["Body"].read() == b"abcdef"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_large_file_goes_in_parts(s3: Any) -> None:
    data = bytes(range(256)) * (4 * 1024 * 11)  # 11 MiB
    with S3MultipartWriter(s3, BUCKET, "results/x/large.bin", part_size=5 * MIB) as writer:
        for start in range(0, len(data), 1024 * 1024 + 7):
            writer.write(data[start : start + 1024 * 1024 + 7])
    got = s3.get_object(Bucket=BUCKET, Key="results/x/large.bin")
    assert got["Body"].read() == data
    assert got["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 1 MiB


def test_error_aborts_the_upload(s3: Any) -> None:
    with (
        pytest.raises(RuntimeError, match="broken"),
        S3MultipartWriter(s3, BUCKET, "results/x/broken.bin", part_size=5 * MIB) as writer,
    ):
        writer.write(b"x" * (6 * MIB))
        raise RuntimeError("broken download")
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/x/broken.bin")
    with pytest.raises(ValueError, match="after close"):
        writer.write(b"more")


def test_part_size_below_s3_minimum_is_refused(s3: Any) -> None:
    with pytest.raises(ValueError, match="at least"):
        S3MultipartWriter(s3, BUCKET, "k", part_size=1024)


def _zip(names: list[str], padding: int = 0) -> bytes:
    return zip_of({name: "a,b\n1,2\n" + "x" * padding for name in names}, zipfile.ZIP_STORED)


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
