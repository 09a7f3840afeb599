"""SizedReader: reports its length so requests sends Content-Length, reads in bounded blocks."""

from __future__ import annotations

import io

import pytest
import requests
from botocore.response import StreamingBody
from prediction_one.streams import SizedReader


class RecordingReader(io.RawIOBase):
    """A stream of ``size`` bytes that records every read size and refuses unbounded reads."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        assert n is not None and n >= 0, "unbounded read"
        self.reads.append(n)
        take = min(n, self.remaining)
        self.remaining -= take
        return b"a" * take


def test_requests_sends_content_length_not_chunked():
    body = SizedReader(io.BytesIO(b"x" * 1000), 1000)
    prepared = requests.Request("PUT", "http://127.0.0.1/u", data=body).prepare()
    assert prepared.headers["Content-Length"] == "1000"
    assert "Transfer-Encoding" not in prepared.headers
    assert prepared.body is body


def test_reads_in_bounded_blocks_and_stops_at_length():
    source = RecordingReader(10_000)
    reader = SizedReader(source, 6_000)
    chunks = []
    while chunk := reader.read(4096):
        chunks.append(chunk)
    assert [len(c) for c in chunks] == [4096, 1904]
    assert max(source.reads) <= 4096
    assert reader.bytes_read == 6_000 and reader.largest_read == 4096
    assert reader.read(10) == b""


def test_read_all_is_bounded_by_length():
    reader = SizedReader(io.BytesIO(b"abcdef"), 4)
    assert reader.read() == b"abcd"


def test_a_short_source_is_an_error_not_a_short_body():
    reader = SizedReader(io.BytesIO(b"abc"), 5)
    assert reader.read(3) == b"abc"
    with pytest.raises(ValueError, match="ended after 3 of the 5 bytes"):
        reader.read(2)


def test_wraps_botocore_streaming_body():
    raw = io.BytesIO(b"col1,col2\n1,2\n")
    body = StreamingBody(raw, content_length=14)
    reader = SizedReader(body, 14)
    assert len(reader) == 14
    assert reader.read(5) + reader.read(100) == b"col1,col2\n1,2\n"


@pytest.mark.parametrize("length", [-1, 1.5, True, "3"])
def test_rejects_bad_lengths(length):
    with pytest.raises(ValueError, match="length"):
        SizedReader(io.BytesIO(b""), length)


def test_rejects_text_and_non_readers():
    with pytest.raises(TypeError, match="read"):
        SizedReader(b"bytes are not a stream", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary"):
        SizedReader(io.StringIO("abc"), 3).read(3)  # type: ignore[arg-type]
