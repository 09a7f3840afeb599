"""Deterministic execution names."""

from __future__ import annotations

import re

import pytest
from retrain_pipeline.naming import execution_name

ALLOWED = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@pytest.mark.parametrize(
    "key",
    [
        "incoming/demo/data.csv",
        "incoming/demo/a b+c.csv",
        "incoming/モデル/データ.csv",
        "incoming/demo/" + "é" * 600 + ".csv",
        "incoming/" + "/" * 30,
        "x",
    ],
)
def test_names_are_short_safe_and_stable(key: str) -> None:
    name = execution_name("bucket", key, "v1")
    assert ALLOWED.match(name), name
    assert name == execution_name("bucket", key, "v1")


def test_readable_prefix() -> None:
    assert execution_name("bucket", "incoming/demo/sales 2024.csv", "v1").startswith("demo-sales-2024-csv-")


def test_every_part_changes_the_name() -> None:
    base = execution_name("bucket", "incoming/demo/a.csv", "v1")
    assert base != execution_name("other", "incoming/demo/a.csv", "v1")
    assert base != execution_name("bucket", "incoming/demo/a.csv", "v2")
    assert base != execution_name("bucket", "incoming/demo/a+csv", "v1")
    assert execution_name("bucket", "incoming/demo/a b.csv", None) != execution_name(
        "bucket", "incoming/demo/a+b.csv", None
    )


def test_long_keys_with_one_prefix_still_differ() -> None:
    prefix = "incoming/demo/" + "a" * 200
    assert execution_name("b", prefix + "1.csv", "v") != execution_name("b", prefix + "2.csv", "v")
