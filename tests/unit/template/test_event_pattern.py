"""The rule that starts the retrain workflow: which S3 Object Created events match (moto's evaluator)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from moto.events.models import EventPattern

from tests.unit.template.conftest import resolve_bucket


@pytest.fixture(scope="module")
def rule(retrain_properties) -> dict[str, Any]:
    events = retrain_properties["Events"]
    assert list(events) == ["ObjectCreated"]
    assert events["ObjectCreated"]["Type"] == "EventBridgeRule"
    return events["ObjectCreated"]["Properties"]


@pytest.fixture(scope="module")
def pattern(rule) -> EventPattern:
    return EventPattern.load(json.dumps(resolve_bucket(rule["Pattern"])))


@pytest.fixture(scope="module")
def base_event(load_event) -> dict[str, Any]:
    return load_event("object-created.json")


def event_for(base: dict[str, Any], key: str, size: int = 10565, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(base)
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["size"] = size
    event.update(changes)
    return event


@pytest.mark.parametrize(
    "name",
    [
        "object-created.json",
        "object-created-zip.json",
        "object-created-special-key.json",
        "retrain-execution-input.json",
    ],
)
def test_sample_events_start_the_workflow(pattern, load_event, name):
    assert pattern.matches_event(load_event(name))


@pytest.mark.parametrize(
    ("key", "size"),
    [
        ("incoming/demo/data.csv", 1),
        ("incoming/demo/nested/folder/data.tsv", 5000),
        ("incoming/demo/empty.csv", 0),  # an empty file starts and is reported as EmptyObject
        ("incoming/demo/unsupported.xlsx", 10),  # reported as UnsupportedFileType, not silently dropped
        ("incoming/top-level.csv", 10),  # reported as KeyOutsideModelFolder
        ("incoming/demo/odd-but-not-empty/", 3),
    ],
)
def test_objects_under_incoming_match(pattern, base_event, key, size):
    assert pattern.matches_event(event_for(base_event, key, size))


@pytest.mark.parametrize(
    ("key", "size"),
    [
        ("incoming/", 0),  # folder markers start nothing
        ("incoming/demo/", 0),
        ("incoming/demo/2024/", 0),
        ("results/demo/rj-1/retrain_result.zip", 100),  # the pipeline's own output never triggers it
        ("results/demo/rj-1/summary.json", 100),
        ("failed/demo/data.csv.json", 100),
        ("training/demo/run.json", 100),
        ("demo/incoming/data.csv", 100),
        ("Incoming/demo/data.csv", 100),
    ],
)
def test_other_objects_do_not_match(pattern, base_event, key, size):
    assert not pattern.matches_event(event_for(base_event, key, size))


def test_other_buckets_and_event_types_do_not_match(pattern, base_event):
    other_bucket = copy.deepcopy(base_event)
    other_bucket["detail"]["bucket"]["name"] = "someone-elses-bucket"
    assert not pattern.matches_event(other_bucket)
    deleted = copy.deepcopy(base_event)
    deleted["detail-type"] = "Object Deleted"
    assert not pattern.matches_event(deleted)
    not_s3 = copy.deepcopy(base_event)
    not_s3["source"] = "custom.uploader"
    assert not pattern.matches_event(not_s3)


def test_undeliverable_events_are_retried_then_kept(rule, sam_template):
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert rule["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600
    assert rule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    queue = sam_template["Resources"]["EventsDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_the_dead_letter_queue_accepts_only_the_stacks_rules(sam_template):
    policy = sam_template["Resources"]["EventsDeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "EventsDeadLetterQueue"}]
    allow = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allow) == 1
    assert allow[0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow[0]["Action"] == "sqs:SendMessage"
    # The retrain rule and the training watcher's rule (tests/unit/template/test_train_watch_template.py).
    assert allow[0]["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": [
                {"Fn::GetAtt": ["RetrainStateMachineObjectCreated", "Arn"]},
                {"Fn::GetAtt": ["TrainWatchStateMachineTrainingRequestCreated", "Arn"]},
            ]
        }
    }


def test_the_rule_the_dead_letter_policy_names_is_the_generated_one(cfn_template):
    rule = cfn_template["Resources"]["RetrainStateMachineObjectCreated"]
    assert rule["Type"] == "AWS::Events::Rule"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "RetrainStateMachine"}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
