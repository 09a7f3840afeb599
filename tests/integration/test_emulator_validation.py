"""Data-limit checks: CSV/TSV row and column limits, the train+eval zip layout, and turning the checks off."""

from __future__ import annotations

import io

import pytest

from p1_retrain.emulator.validation import DataLimits, InvalidData, count_table, validate_upload
from tests.integration.conftest import finish, make_table, make_zip


def run_job(emulator, api, data: bytes, filename: str) -> dict:
    """Upload ``data`` as ``filename`` and return the status once the job has ended."""
    job_id = api.uploaded_job(data, filename)
    finish(emulator, job_id, ("job_finished", "job_failed"))
    return api.status(job_id).json()


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("a.csv", make_table(rows=99), "a.csv: 99 rows; at least 100 required"),
        ("a.csv", make_table(rows=1), "a.csv: 1 row; at least 100 required"),
        ("a.csv", make_table(columns=1), "a.csv: 1 column; at least 2 required"),
        ("a.csv", make_table(columns=201), "a.csv: 201 columns; at most 200 allowed"),
        ("a.csv", b"", "a.csv: empty file; a header line and at least 100 rows required"),
        ("a.csv", make_table() + b"1,2\n", "a.csv: record 122 has 2 columns; header has 3"),
        ("a.tsv", make_table(delimiter=","), "a.tsv: 1 column; at least 2 required"),
        ("report.xlsx", make_table(), "report.xlsx: unsupported file type; expected .csv, .tsv or .zip"),
        ("data.zip", make_table(), "data.zip: not a valid zip file"),
    ],
)
def test_bad_tables_fail_the_job_with_a_clear_message(emulator, api, filename, data, message):
    assert run_job(emulator, api, data, filename)["message"] == message


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("a.csv", make_table(rows=100, columns=2)),
        ("a.csv", make_table(rows=100, columns=200)),
        ("a.tsv", make_table(delimiter="\t")),
        ("A.CSV", b"\xef\xbb\xbf" + make_table()),  # BOM, upper-case extension
        ("a.csv", b"x,y\r\n" + b"".join(b'"multi\nline %d",%d\r\n' % (i, i) for i in range(100))),
        ("a.csv", b"\n\n" + make_table() + b"\n\n"),  # blank lines are not rows
    ],
)
def test_tables_within_limits_finish(emulator, api, filename, data):
    assert run_job(emulator, api, data, filename)["status"] == "job_finished"


def test_limit_bounds_of_one_million_rows():
    limits = DataLimits()
    table = b"a,b\n" + b"1,2\n" * 1_000_000
    assert count_table(io.BytesIO(table), "big.csv", limits).rows == 1_000_000
    with pytest.raises(InvalidData, match=r"big.csv: more than 1000000 rows; at most 1000000 allowed"):
        count_table(io.BytesIO(table + b"1,2\n"), "big.csv", limits)


def test_custom_limits_through_the_server(tmp_path):
    from p1_retrain.emulator import EmulatorServer
    from tests.integration.conftest import Api

    with EmulatorServer(job_seconds=0, limits=DataLimits(min_rows=1, max_rows=5)) as server:
        api = Api(server.base_url)
        assert run_job(server, api, make_table(rows=6), "a.csv")["message"] == (
            "a.csv: more than 5 rows; at most 5 allowed"
        )
        assert run_job(server, api, make_table(rows=5), "a.csv")["status"] == "job_finished"


def train_eval(train: bytes | None = None, evaluation: bytes | None = None, **extra: bytes) -> bytes:
    entries = {"train_src/train.csv": train or make_table(), "eval_src/eval.tsv": evaluation}
    if evaluation is None:
        entries["eval_src/eval.tsv"] = make_table(delimiter="\t")
    entries.update(extra)
    return make_zip({name: data for name, data in entries.items() if data != b"-"})


def test_train_eval_zip_finishes_and_counts_both(emulator, api):
    data = train_eval(**{"__MACOSX/._x": b"junk", "train_src/": b""})
    job_id = api.uploaded_job(data, "data.zip")
    finish(emulator, job_id)
    tables = emulator.admin.job(job_id)["tables"]
    assert tables == [
        {"name": "train_src/train.csv", "rows": 120, "columns": 3},
        {"name": "eval_src/eval.tsv", "rows": 120, "columns": 3},
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (train_eval(evaluation=b"-"), "data.zip: no eval_src/<name>.csv or .tsv inside"),
        (train_eval(train=b"-"), "data.zip: no train_src/<name>.csv or .tsv inside"),
        (
            train_eval(**{"train_src/second.csv": make_table()}),
            "data.zip: train_src/ holds 2 files; exactly one expected",
        ),
        (train_eval(evaluation=make_table(rows=5)), "eval_src/eval.tsv: 1 column; at least 2 required"),
        (
            make_zip({"train_src/t.csv": make_table(), "eval_src/e.csv": make_table(rows=5)}),
            "eval_src/e.csv: 5 rows; at least 100 required",
        ),
        (
            make_zip({"train_src/t.xlsx": make_table(), "eval_src/e.csv": make_table()}),
            "train_src/t.xlsx: unsupported file type; expected .csv or .tsv",
        ),
        (
            make_zip({"dir/train_src/t.csv": make_table(), "dir/eval_src/e.csv": make_table()}),
            "data.zip: no train_src/<name>.csv or .tsv inside",
        ),
    ],
)
def test_bad_zips_fail_the_job(emulator, api, data, message):
    assert run_job(emulator, api, data, "data.zip")["message"] == message


def test_validation_off_lets_anything_finish(emulator, api):
    emulator.admin.set_settings(validate=False)
    job_id = api.uploaded_job(b"not a table", "x.bin")
    finish(emulator, job_id)
    assert emulator.admin.job(job_id)["validation"] == "skipped"


def test_validate_upload_reads_files_in_a_stream(tmp_path):
    path = tmp_path / "upload"
    path.write_bytes(train_eval())
    result = validate_upload(path, "x.zip", DataLimits())
    assert result.ok and [t.rows for t in result.tables] == [120, 120]
