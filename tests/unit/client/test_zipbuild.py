"""Train + eval zip: the layout the API accepts, deflated, built in constant memory; the layout check."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest
from prediction_one.zipbuild import COPY_CHUNK, build_train_eval_zip, check_train_eval_layout


class Generated(io.RawIOBase):
    """``size`` bytes of CSV-like data produced on demand; records the largest read."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.largest = 0
        self.line = b"12345,67.5,abcdefgh,2024-01-01\n"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.remaining)
        self.largest = max(self.largest, len(buffer))
        reps = self.line * (n // len(self.line) + 1)
        buffer[:n] = reps[:n]
        self.remaining -= n
        return n


class Unseekable(io.RawIOBase):
    """A write-only sink like a pipe: no tell, no seek."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.data += b
        return len(b)

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("unseekable")


def test_layout_names_and_content_from_paths(tmp_path):
    train = tmp_path / "train.csv"
    evaluation = tmp_path / "eval.csv"
    train.write_bytes(b"a,b\n1,2\n")
    evaluation.write_bytes(b"a,b\n3,4\n")
    out = io.BytesIO()
    build_train_eval_zip(train, evaluation, out, "学習データ.csv", "eval data.tsv")
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        assert archive.namelist() == ["train_src/学習データ.csv", "eval_src/eval data.tsv"]
        assert archive.read("train_src/学習データ.csv") == b"a,b\n1,2\n"
        assert archive.read("eval_src/eval data.tsv") == b"a,b\n3,4\n"
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        assert archive.testzip() is None
        assert check_train_eval_layout(archive.namelist()) == []


def test_streams_to_an_unseekable_sink_from_file_objects():
    sink = Unseekable()
    build_train_eval_zip(io.BytesIO(b"x,y\n" * 1000), Generated(5000), sink, "t.csv", "e.csv", eval_size=5000)
    with zipfile.ZipFile(io.BytesIO(bytes(sink.data))) as archive:
        assert archive.read("train_src/t.csv") == b"x,y\n" * 1000
        assert len(archive.read("eval_src/e.csv")) == 5000


def test_unknown_sizes_still_make_a_valid_zip():
    out = io.BytesIO()
    build_train_eval_zip(Generated(3000), Generated(10), out, "t.csv", "e.csv")
    with zipfile.ZipFile(out) as archive:
        assert [len(archive.read(n)) for n in archive.namelist()] == [3000, 10]


def test_memory_stays_constant_for_a_large_file():
    size = 24 * 1024 * 1024
    train = Generated(size)
    sink = Unseekable()
    tracemalloc.start()
    try:
        build_train_eval_zip(train, Generated(1000), sink, "big.csv", "small.csv", train_size=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert train.remaining == 0
    assert train.largest <= COPY_CHUNK
    # The compressed output (kept in memory by this sink) is small; the input never is held whole.
    assert peak < 8 * 1024 * 1024, peak
    with zipfile.ZipFile(io.BytesIO(bytes(sink.data))) as archive:
        assert archive.getinfo("train_src/big.csv").file_size == size


@pytest.mark.parametrize(
    ("train_name", "problem"),
    [("", "train_name"), ("dir/x.csv", "train_name"), ("..", "train_name"), ("x.xlsx", ".csv or .tsv")],
)
def test_bad_names_are_refused(train_name, problem):
    with pytest.raises(ValueError, match=problem):
        build_train_eval_zip(io.BytesIO(b""), io.BytesIO(b""), io.BytesIO(), train_name, "e.csv")


@pytest.mark.parametrize(
    ("names", "problems"),
    [
        (["train_src/a.csv", "eval_src/b.csv"], []),
        (["train_src/", "train_src/a.TSV", "eval_src/", "eval_src/b.Csv", "README.txt"], []),
        (["train_src/a.csv"], ["no evaluation data"]),
        (["eval_src/b.csv"], ["no training data"]),
        ([], ["no training data", "no evaluation data"]),
        (["data/train_src/a.csv", "eval_src/b.csv"], ["no training data"]),
        (["train_src/sub/a.csv", "eval_src/b.csv"], ["no training data"]),
        (["train_src/a.xlsx", "eval_src/b.csv"], ["no training data"]),
        (["train_src/a.csv", "eval_src/b.csv", "../evil.csv"], ["unsafe entry name '../evil.csv'"]),
        (["/train_src/a.csv", "eval_src/b.csv"], ["unsafe entry name", "no training data"]),
        (["C:/train_src/a.csv", "eval_src/b.csv"], ["unsafe entry name", "no training data"]),
    ],
)
def test_check_train_eval_layout(names, problems):
    found = check_train_eval_layout(names)
    assert len(found) == len(problems), found
    for text, expected in zip(found, problems, strict=True):
        assert expected in text
