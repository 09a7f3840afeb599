"""The template's EventBridge rules, checked against EventBridge's own rules (event-ruler), not moto's.

moto reads a path named both beside and inside ``$or`` as an AND; EventBridge rejects such a pattern (or,
leniently, lets the later condition replace the earlier one, so ``anything-but suffix "/"`` alone would
start a run for every object in the bucket, the pipeline's own results and failure records included).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from p1_retrain.local.event_rules import InvalidEventPattern, compile_pattern, matches, validate_pattern
from tests.unit.template.conftest import SAMPLE_BUCKET, resolve_bucket

RULES = {
    "retrain": ("RetrainStateMachine", "ObjectCreated"),
    "training": ("TrainWatchStateMachine", "TrainingRequestCreated"),
}

# The pattern both rules had before: `detail.object.key` beside and inside $or.
OLD_PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {
        "bucket": {"name": [SAMPLE_BUCKET]},
        "object": {
            "key": [{"prefix": "incoming/"}],
            "$or": [
                {"size": [{"numeric": [">", 0]}]},
                {"key": [{"anything-but": {"suffix": "/"}}]},
            ],
        },
    },
}

GIB = 1024**3

# (key, size, starts the retrain rule, starts the training rule): every key the pipeline itself writes,
# folder markers as the S3 console creates them (0 bytes, trailing slash), and what users drop.
KEYS = [
    # what users drop under incoming/
    ("incoming/m/a.csv", 10565, True, False),
    ("incoming/m/2026/11/a.csv", 10565, True, False),
    ("incoming/売上予測/a.csv", 10565, True, False),
    ("incoming/m/data (1).tsv", 1, True, False),
    ("incoming/m/train+eval.zip", 4096, True, False),
    ("incoming/m/DATA.CSV", 10, True, False),
    ("incoming/m/huge.csv", 6 * GIB, True, False),  # beyond EventBridge's numeric range: the key decides
    ("incoming/m/huge.ZIP", 3 * GIB, True, False),
    ("incoming/m/empty.csv", 0, True, False),  # reported as EmptyObject
    ("incoming/m/empty.zip", 0, True, False),
    ("incoming/m/book.xlsx", 10, True, False),  # reported as UnsupportedFileType
    ("incoming/m/README", 10, True, False),
    ("incoming/a.csv", 10, True, False),  # reported as KeyOutsideModelFolder (failed/_unknown/)
    ("incoming/m/odd-but-not-empty/", 3, True, False),  # not a folder marker: reported as FolderMarker
    # folder markers start nothing
    ("incoming/", 0, False, False),
    ("incoming/m/", 0, False, False),
    ("incoming/m/2026/", 0, False, False),
    ("incoming/m/v1.2/", 0, False, False),
    ("training/", 0, False, False),
    ("training/m/", 0, False, False),
    ("results/", 0, False, False),
    ("failed/", 0, False, False),
    # an empty file of another type starts nothing (no folder marker can be told from it by its key)
    ("incoming/m/empty.txt", 0, False, False),
    # training requests
    ("training/m/run.json", 47, False, True),
    ("training/m/2026/run.JSON", 47, False, True),
    ("training/m/empty.json", 0, False, True),  # reported as BadTrainingRequest
    ("training/m/notes.txt", 10, False, True),  # reported as BadTrainingRequest
    ("training/loose.json", 10, False, True),  # reported as KeyOutsideModelFolder
    # what the pipeline writes: never starts anything
    ("results/m/job/file.csv", 100, False, False),
    ("results/m/job/retrain_result.zip", 100, False, False),
    ("results/m/job/summary.json", 100, False, False),
    ("results/m/training/id/x.zip", 100, False, False),
    ("results/m/training/id/summary.json", 100, False, False),
    ("failed/m/x.csv.json", 100, False, False),
    ("failed/m/training/id.json", 100, False, False),
    ("failed/_unknown/x.json", 100, False, False),
    ("failed/_unknown/incoming/x.csv.json", 100, False, False),
    # other prefixes and spellings
    ("Incoming/m/a.csv", 10, False, False),
    ("INCOMING/m/a.csv", 10, False, False),
    ("m/incoming/a.csv", 10, False, False),
    ("archive/incoming/m/a.csv", 10, False, False),
    ("Training/m/run.json", 10, False, False),
    ("a.csv", 10, False, False),
]


@pytest.fixture(scope="module")
def patterns(sam_template) -> dict[str, dict[str, Any]]:
    found = {}
    for name, (machine, event) in RULES.items():
        rule = sam_template["Resources"][machine]["Properties"]["Events"][event]
        assert rule["Type"] == "EventBridgeRule"
        found[name] = resolve_bucket(rule["Properties"]["Pattern"])
    return found


@pytest.fixture(scope="module")
def base_event(load_event) -> dict[str, Any]:
    return load_event("object-created.json")


def s3_event(base: dict[str, Any], key: str, size: int, bucket: str = SAMPLE_BUCKET) -> dict[str, Any]:
    event = copy.deepcopy(base)
    event["detail"]["object"].update(key=key, size=size)
    event["detail"]["bucket"]["name"] = bucket
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    return event


def test_every_rule_pattern_in_the_template_is_valid_on_eventbridge(sam_template):
    rules = [
        (name, event["Properties"]["Pattern"])
        for name, resource in sam_template["Resources"].items()
        for event in resource.get("Properties", {}).get("Events", {}).values()
        if event["Type"] in ("EventBridgeRule", "CloudWatchEvent")
    ]
    assert {name for name, _ in rules} == {"RetrainStateMachine", "TrainWatchStateMachine"}
    for _, pattern in rules:
        validate_pattern(resolve_bucket(pattern))


def test_no_branch_of_a_rule_names_a_field_twice(patterns):
    for pattern in patterns.values():
        branches = compile_pattern(pattern)
        assert len(branches) == 2
        for branch in branches:
            assert ("detail", "object", "key") in branch
            assert ("detail", "bucket", "name") in branch


def test_the_old_pattern_is_rejected_by_eventbridge_but_accepted_by_moto():
    duplicate = r"Path `detail\.object\.key` cannot be allowed multiple times"
    with pytest.raises(InvalidEventPattern, match=duplicate):
        validate_pattern(OLD_PATTERN)
    EventPattern.load(json.dumps(OLD_PATTERN))  # moto takes it and reads it as an AND


TABLE = pytest.mark.parametrize(
    ("key", "size", "retrain", "training"), KEYS, ids=[f"{row[0]}@{row[1]}" for row in KEYS]
)


@TABLE
def test_which_objects_start_which_rule(patterns, base_event, key, size, retrain, training):
    event = s3_event(base_event, key, size)
    assert matches(patterns["retrain"], event) is retrain
    assert matches(patterns["training"], event) is training


@TABLE
def test_moto_agrees_with_eventbridge_on_these_patterns(patterns, base_event, key, size, retrain, training):
    event = s3_event(base_event, key, size)
    assert EventPattern.load(json.dumps(patterns["retrain"])).matches_event(event) is retrain
    assert EventPattern.load(json.dumps(patterns["training"])).matches_event(event) is training


@pytest.mark.parametrize("key", ["incoming/m/a.csv", "training/m/run.json"])
def test_other_buckets_event_types_and_sources_start_nothing(patterns, base_event, key):
    for event in (
        s3_event(base_event, key, 100, bucket="someone-elses-bucket"),
        {**s3_event(base_event, key, 100), "detail-type": "Object Deleted"},
        {**s3_event(base_event, key, 100), "source": "custom.uploader"},
    ):
        assert not matches(patterns["retrain"], event)
        assert not matches(patterns["training"], event)


def test_the_empty_file_branch_lists_the_accepted_extensions(patterns, sam_template):
    """An empty file is told from a folder marker by its extension: the list is AllowedExtensions'."""
    allowed = sam_template["Parameters"]["AllowedExtensions"]["Default"].split(",")
    (_, by_extension) = compile_pattern(patterns["retrain"])
    wildcards = {condition["wildcard"] for condition in by_extension[("detail", "object", "key")]}
    expected = {f"incoming/*{ext}" for ext in allowed} | {f"incoming/*{ext.upper()}" for ext in allowed}
    assert wildcards == expected


@pytest.mark.parametrize(
    "name", ["object-created.json", "object-created-zip.json", "object-created-special-key.json"]
)
def test_the_sample_events_start_the_retrain(patterns, load_event, name):
    assert matches(patterns["retrain"], load_event(name))
    assert not matches(patterns["training"], load_event(name))


def test_the_sample_training_request_starts_the_watcher(patterns, load_event):
    event = load_event("training-object-created.json")
    assert matches(patterns["training"], event)
    assert not matches(patterns["retrain"], event)
