"""Refused before any API call, with a named error and a failure record: files Prediction One cannot
read as text, and API keys that cannot be sent as a header."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

TABLE = "品目,数量\nりんご,3\n" + "".join(f"item{index},{index}\n" for index in range(120))


def xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"\xff\xfe" + TABLE.encode("utf-16-le"), "UTF-16 LE text"),  # Excel "Unicode text"
        (TABLE.encode("utf-16"), "UTF-16"),
        (TABLE.encode("utf-16-be"), "UTF-16 BE text without a byte-order mark"),
        (TABLE.encode("utf-32"), "UTF-32"),
        (xlsx_bytes(), "an Excel workbook (.xlsx)"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 4, "a PDF document"),
        (b"\x1f\x8b\x08\x00" + bytes(200), "gzip"),
        (b"a,b\n1,2\n\x00\x01\x02\x03\xff\xfe", "binary data"),
    ],
)
def test_unreadable_text_is_named_before_any_api_call(stack: Any, body: bytes, named: str) -> None:
    key = "incoming/demo/売上.csv"
    state, raised = stack.failed_upload(key, body)
    assert type(raised).__name__ == "UnsupportedEncoding"
    assert named in str(raised) and key in str(raised)
    assert "UTF-8" in str(raised) and "Shift-JIS" in str(raised)
    assert stack.emulator.admin.requests_log() == []
    record = stack.read_json(stack.record_failure(state)["failure_key"])
    assert record["error"] == "UnsupportedEncoding"
    assert "UTF-8" in record["advice"]
    assert stack.s3.head_object(Bucket=stack.bucket, Key=key)["ContentLength"] == len(body)


def test_a_zip_entry_in_utf16_is_named(stack: Any) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train_src/train.csv", TABLE.encode("utf-16"))
        archive.writestr("eval_src/eval.csv", TABLE.encode("utf-8"))
    _state, raised = stack.failed_upload("incoming/demo/bundle.zip", buffer.getvalue())
    assert type(raised).__name__ == "UnsupportedEncoding"
    assert "'train_src/train.csv'" in str(raised) and "UTF-16" in str(raised)
    assert stack.emulator.admin.requests_log() == []


@pytest.mark.parametrize(
    "body",
    [TABLE.encode("utf-8"), TABLE.encode("utf-8-sig"), TABLE.encode("shift_jis"), TABLE.encode("cp932")],
)
def test_utf8_and_shift_jis_go_through(stack: Any, body: bytes) -> None:
    state = stack.upload(stack.put("incoming/demo/data.csv", body))
    assert state["job"]["retrain_job_id"]


@pytest.mark.parametrize(
    ("api_key", "problem"),
    [
        ("demo-key-１２３", "contains a full-width character at position 10"),
        ("demo\u3000key", "contains a full-width character at position 5"),
        ("démo-key", "contains a non-ASCII character at position 2"),
        ("demo\nkey", "contains a control character (line break, tab, ...) at position 5"),
        ("demo key", "contains a space at position 5"),
    ],
)
def test_an_api_key_that_cannot_be_a_header_is_named(stack: Any, api_key: str, problem: str) -> None:
    stack.set_secret({"demo": {"api_key": api_key}})
    state, raised = stack.failed_upload("incoming/demo/a.csv", stack.csv_bytes())
    assert type(raised).__name__ == "ApiKeyMalformed"
    message = str(raised)
    assert "'demo'" in message and problem in message and "secret" in message
    assert api_key not in message
    assert stack.emulator.admin.requests_log() == []
    record = stack.read_json(stack.record_failure(state)["failure_key"])
    assert record["error"] == "ApiKeyMalformed"
    assert problem in record["message"] and "secret" in record["advice"]
    assert api_key not in json.dumps(record, ensure_ascii=False)
