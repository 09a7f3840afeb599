"""The newest file wins the switch, however the executions of one model interleave.

Many models at once, each getting two files in the same second (two keys) or two versions of one key,
with switching on: the model each ends up publishing must be the one trained on the newest file, every
time. The local stack sends S3's own event facts (millisecond time, increasing sequencer).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from p1_retrain.local.data import synthetic_csv
from p1_retrain.local.runs import Run
from p1_retrain.local.stack import FAST_PARAMETERS, LocalStack

from .conftest import TEMPLATE

ROUNDS = 12
JOB_SECONDS = 0.2
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def racing() -> Iterator[tuple[LocalStack, object]]:
    from p1_retrain.emulator import EmulatorServer

    names = [f"keys{index:02d}" for index in range(ROUNDS)] + [
        f"versions{index:02d}" for index in range(ROUNDS)
    ]
    keys = {name: f"{name}-{secrets.token_hex(8)}" for name in names}
    entries = {name: {"api_key": key, "auto_switch": True} for name, key in keys.items()}
    with (
        EmulatorServer(port=0, models=keys, job_seconds=JOB_SECONDS) as emulator,
        LocalStack(TEMPLATE, emulator.base_url, entries, FAST_PARAMETERS) as stack,
    ):
        yield stack, emulator


def _published(emulator) -> dict[str, str]:
    """model -> the retrain job whose model was published last."""
    last: dict[str, str] = {}
    for switch in emulator.admin.switches():
        last[switch["model"]] = switch["job_id"]
    return last


def _by_version(runs: list[Run]) -> dict[tuple[str | None, str | None], Run]:
    return {(run.key, run.version_id): run for run in runs}


def test_the_newest_file_is_published_in_every_round(racing) -> None:
    stack, emulator = racing
    newest: dict[str, tuple[str, str | None]] = {}
    for index in range(ROUNDS):
        model = f"keys{index:02d}"
        stack.put_object(f"incoming/{model}/sales-2026-10.csv", synthetic_csv(4 * index))
        november = f"incoming/{model}/sales-2026-11.csv"
        newest[model] = (november, stack.put_object(november, synthetic_csv(4 * index + 1)))
        model = f"versions{index:02d}"
        key = f"incoming/{model}/sales.csv"
        stack.put_object(key, synthetic_csv(4 * index + 2))
        newest[model] = (key, stack.put_object(key, synthetic_csv(4 * index + 3)))
    runs = stack.wait_all(TIMEOUT)
    assert len(runs) == 4 * ROUNDS
    assert [run.key for run in runs if run.status != "SUCCEEDED"] == []
    by_version = _by_version(runs)
    published = _published(emulator)
    wrong = {
        model: (by_version[source].key, by_version[source].version_id)
        for model, source in newest.items()
        if published.get(model) != by_version[source].retrain_job_id
    }
    assert wrong == {}, f"an older file was published last for {sorted(wrong)}"
    for model, source in newest.items():
        assert by_version[source].switched is True, model
