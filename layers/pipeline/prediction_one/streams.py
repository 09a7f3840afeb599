"""File-like wrappers for streaming uploads with a known length."""

from __future__ import annotations

from typing import Protocol


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class SizedReader:
    """Present ``length`` bytes of ``source`` as a file-like object that reports its length.

    ``requests`` sends a body with ``__len__`` with a ``Content-Length`` header instead of chunked transfer
    encoding, and ``urllib3`` reads it block by block, so memory stays constant. It works with any object
    that has ``read(n)``: open files, ``io.BytesIO``, botocore's ``StreamingBody``. Reading stops after
    ``length`` bytes; a source that ends early raises ``ValueError`` rather than sending a short body.
    It has no ``__iter__`` on purpose: requests would treat it as a generator-like stream.
    """

    def __init__(self, source: Readable, length: int) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be an integer >= 0, got {length!r}")
        if not callable(getattr(source, "read", None)):
            raise TypeError(f"the body must have a read(size) method, got {type(source).__name__}")
        self._source = source
        self._length = length
        self._remaining = length
        self.largest_read = 0

    def __len__(self) -> int:
        return self._length

    @property
    def bytes_read(self) -> int:
        return self._length - self._remaining

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        want = self._remaining if size is None or size < 0 else min(size, self._remaining)
        if want == 0:
            return b""
        data = self._source.read(want)
        if isinstance(data, str):
            raise TypeError("the body must be opened in binary mode")
        if len(data) > want:
            raise ValueError(f"the body returned {len(data)} bytes when {want} were asked for")
        if not data:
            raise ValueError(
                f"the body ended after {self.bytes_read} of the {self._length} bytes declared as its length"
            )
        self._remaining -= len(data)
        self.largest_read = max(self.largest_read, len(data))
        return bytes(data)
