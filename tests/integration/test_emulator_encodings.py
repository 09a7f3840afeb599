"""The emulator, like the service, reports text it cannot read as an encoding problem."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.integration.conftest import finish, make_table

TEXT = "顧客,売上\n" + "".join(f"A{index},{index}\n" for index in range(120))


def run_job(emulator, api, data: bytes, filename: str) -> dict:
    job_id = api.uploaded_job(data, filename)
    finish(emulator, job_id, ("job_finished", "job_failed"))
    return api.status(job_id).json()


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (TEXT.encode("utf-16"), "it is UTF-16 LE (byte-order mark)"),
        (TEXT.encode("utf-16-be"), "NUL bytes"),
        (TEXT.encode("utf-32"), "it is UTF-32 LE (byte-order mark)"),
        (bytes([0x81, 0x20, 0xFF, 0x2C, 0x41]) * 300, "neither UTF-8 nor Shift-JIS"),
    ],
)
def test_undecodable_tables_fail_as_an_encoding_problem(emulator, api, data, found):
    status = run_job(emulator, api, data, "売上.csv")
    assert status["status"] == "job_failed"
    assert status["message"].startswith("売上.csv: cannot be read as text: ")
    assert found in status["message"] and "column" not in status["message"]


def test_a_zip_entry_in_utf16_fails_the_same_way(emulator, api):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train_src/train.csv", TEXT.encode("utf-16"))
        archive.writestr("eval_src/eval.csv", make_table())
    status = run_job(emulator, api, buffer.getvalue(), "bundle.zip")
    assert status["message"].startswith("train_src/train.csv: cannot be read as text: it is UTF-16 LE")


@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "shift_jis"])
def test_utf8_and_shift_jis_tables_finish(emulator, api, codec):
    status = run_job(emulator, api, TEXT.encode(codec), "data.csv")
    assert status["status"] == "job_finished", status.get("message")
