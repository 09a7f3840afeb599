"""The training + evaluation zip the API accepts: ``train_src/<train>.csv`` and ``eval_src/<eval>.csv``."""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import BinaryIO

TRAIN_DIR = "train_src"
EVAL_DIR = "eval_src"
DATA_EXTENSIONS = (".csv", ".tsv")
COPY_CHUNK = 1024 * 1024

Source = str | os.PathLike[str] | BinaryIO


def _check_name(name: object, argument: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{argument} must be a non-empty file name")
    if "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise ValueError(f"{argument} must be a plain file name without folders, got {name!r}")
    if not name.lower().endswith(DATA_EXTENSIONS):
        raise ValueError(f"{argument} must end with .csv or .tsv, got {name!r}")
    return name


def _size_of(source: Source) -> int | None:
    if isinstance(source, str | os.PathLike):
        return os.path.getsize(source)
    try:
        if not source.seekable():
            return None
        position = source.tell()
        end = source.seek(0, os.SEEK_END)
        source.seek(position)
        return end - position
    except (AttributeError, OSError, ValueError):
        return None


def _add(
    archive: zipfile.ZipFile, arcname: str, source: Source, size: int | None, when: tuple[int, ...]
) -> None:
    info = zipfile.ZipInfo(arcname, date_time=when[:6])  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    if size is not None:
        info.file_size = size
    # Unknown size: ask for zip64 records so files above 2 GiB still work.
    with archive.open(info, "w", force_zip64=size is None) as target:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as handle:
                shutil.copyfileobj(handle, target, COPY_CHUNK)
        else:
            shutil.copyfileobj(source, target, COPY_CHUNK)


def build_train_eval_zip(
    train: Source,
    eval: Source,  # named after the zip's eval_src folder; callers may pass it by keyword
    out: BinaryIO,
    train_name: str,
    eval_name: str,
    *,
    train_size: int | None = None,
    eval_size: int | None = None,
    date_time: tuple[int, int, int, int, int, int] | None = None,
) -> None:
    """Write a zip holding ``train_src/<train_name>`` and ``eval_src/<eval_name>`` (deflated) to ``out``.

    ``train``/``eval`` are paths or binary file objects; they are copied in 1 MiB chunks, so memory
    stays constant. ``out`` may be unseekable (a pipe or a multipart upload stream). Pass the sizes when
    the sources are unseekable streams so small files get plain (not zip64) headers.
    """
    train_name = _check_name(train_name, "train_name")
    eval_name = _check_name(eval_name, "eval_name")
    when = date_time or time.gmtime()[:6]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _add(
            archive,
            f"{TRAIN_DIR}/{train_name}",
            train,
            train_size if train_size is not None else _size_of(train),
            when,
        )
        _add(
            archive,
            f"{EVAL_DIR}/{eval_name}",
            eval,
            eval_size if eval_size is not None else _size_of(eval),
            when,
        )


def check_train_eval_layout(names: Iterable[str]) -> list[str]:
    """Problems with a retrain zip's entry names (empty when it is usable): it needs at least one
    ``train_src/*.csv|tsv`` and one ``eval_src/*.csv|tsv``; absolute or ``..`` names are refused."""
    problems: list[str] = []
    found = {TRAIN_DIR: False, EVAL_DIR: False}
    for name in names:
        path = PurePosixPath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            problems.append(f"unsafe entry name {name!r}")
            continue
        if name.endswith("/"):
            continue
        if len(path.parts) == 2 and path.parts[0] in found and path.suffix.lower() in DATA_EXTENSIONS:
            found[path.parts[0]] = True
    if not found[TRAIN_DIR]:
        problems.append(f"no training data: the zip needs a {TRAIN_DIR}/<name>.csv (or .tsv) entry")
    if not found[EVAL_DIR]:
        problems.append(f"no evaluation data: the zip needs an {EVAL_DIR}/<name>.csv (or .tsv) entry")
    return problems
