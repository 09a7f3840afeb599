"""What a file's first bytes tell about its encoding (no AWS)."""

from __future__ import annotations

import pytest
from retrain_pipeline.encoding import sniff

TEXT = "顧客,売上\nA社,100\n" * 20


@pytest.mark.parametrize(
    ("block", "found"),
    [
        (TEXT.encode("utf-32-le"), "UTF-32 LE text without a byte-order mark"),
        (TEXT.encode("utf-32-be"), "UTF-32 BE text without a byte-order mark"),
        (bytes([1, 0, 5, 0, 0, 0, 7, 9]) * 10, None),  # NULs without a pattern: binary
        (b"\xff\xfe\x00\x00" + TEXT.encode("utf-32-le"), "UTF-32 LE"),
        (b"\x00\x00\xfe\xff" + TEXT.encode("utf-32-be"), "UTF-32 BE"),
        (b"\xff\xfe" + TEXT.encode("utf-16-le"), "UTF-16 LE text (it starts with a UTF-16 byte-order mark"),
        (b"\xfe\xff" + TEXT.encode("utf-16-be"), "UTF-16 BE text (it starts"),
        ("id,name\n1,x\n".encode("utf-16-le"), "UTF-16 LE text without a byte-order mark"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "Excel 97-2003"),
        (b"PK\x03\x04" + bytes(30), "a zip archive"),
    ],
)
def test_what_prediction_one_cannot_read_is_named(block: bytes, found: str | None) -> None:
    result = sniff(block)
    if found is None:
        assert result is not None and "NUL" in result
    else:
        assert result is not None and found in result


@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "shift_jis", "cp932", "euc_jp"])
def test_text_without_nuls_passes(codec: str) -> None:
    assert sniff(TEXT.encode(codec)) is None
    assert sniff(b"") is None
