"""statemachine/train_watch.asl.json: what only the watcher has (its routes, its step names, the retrain
workflow's failure path it reuses) and the sample inputs. The checks both workflows share are in
test_workflow_definition.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from retrain_pipeline import failures
from retrain_pipeline.step import TRAINING_STEPS

from tests.unit.template.workflows import TRAIN_WATCH

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def watcher(state_machine_sources) -> tuple[dict[str, Any], str]:
    return state_machine_sources[TRAIN_WATCH.machine]


@pytest.fixture(scope="module")
def asl(watcher, render_asl) -> dict[str, Any]:
    return render_asl(watcher[1])


@pytest.fixture(scope="module")
def states(asl) -> dict[str, Any]:
    return asl["States"]


def test_the_substitutions_are_the_watchers_functions_and_the_shared_settings(watcher):
    assert set(watcher[0]["DefinitionSubstitutions"]) == {
        "StartWatchFunctionArn",
        "CheckTrainingFunctionArn",
        "ArchiveTrainingFunctionArn",
        "RecordFailureFunctionArn",
        "NotificationTopicArn",
        "TaskRetryIntervalSeconds",
        "TaskRetryMaxAttempts",
        "TaskRetryMaxDelaySeconds",
    }


def test_the_failure_path_is_the_retrain_workflows_function(watcher, state_machine_sources):
    retrain = state_machine_sources["RetrainStateMachine"][0]["DefinitionSubstitutions"]
    ours = watcher[0]["DefinitionSubstitutions"]
    assert ours["RecordFailureFunctionArn"] == retrain["RecordFailureFunctionArn"]
    assert ours["NotificationTopicArn"] == retrain["NotificationTopicArn"]


def test_step_names_tell_the_shared_function_which_workflow_failed(states, retrain_asl):
    """RecordFailure hands a state to the training records when its failed_step is a watcher step, so the
    watcher's step names must be exactly ``TRAINING_STEPS`` and never a retrain step name."""
    failed_steps = {
        state["Result"]
        for state in states.values()
        if state["Type"] == "Pass" and isinstance(state.get("Result"), str)
    }
    assert failed_steps == set(TRAIN_WATCH.failing_steps) == set(TRAINING_STEPS)
    assert not set(TRAIN_WATCH.failing_steps) & set(retrain_asl["States"])
    retrain_failed = {
        state["Result"]
        for state in retrain_asl["States"].values()
        if state["Type"] == "Pass" and isinstance(state.get("Result"), str)
    }
    assert retrain_failed and not TRAINING_STEPS & retrain_failed


def test_the_routes_after_each_check(states):
    assert states["StartWatch"]["Next"] == "IsDuplicate"
    assert states["IsDuplicate"]["Choices"] == [
        {"Variable": "$.duplicate", "BooleanEquals": True, "Next": "DuplicateEvent"}
    ]
    assert states["IsDuplicate"]["Default"] == "TrainingState"
    assert states["DuplicateEvent"]["Type"] == "Succeed"
    assert states["CheckTraining"]["Next"] == "TrainingState"
    routes = {choice["StringEquals"]: choice["Next"] for choice in states["TrainingState"]["Choices"]}
    assert all(choice["Variable"] == "$.poll.state" for choice in states["TrainingState"]["Choices"])
    assert routes == {
        "finished": "ArchiveTraining",
        "failed": "TrainingFailed",
        "deadline": "TrainingDeadline",
    }
    assert states["TrainingState"]["Default"] == "WaitForTraining"
    assert states["ArchiveTraining"]["Next"] == "NotifySuccess"


# Sample events (events/training-*.json)


def test_the_sample_request_is_the_object_the_sample_event_names(load_event):
    event = load_event("training-object-created.json")
    body = (ROOT / "events" / "training-request.json").read_bytes()
    obj = event["detail"]["object"]
    assert obj["key"].startswith("training/demo/") and obj["key"].endswith(".json")
    assert obj["size"] == len(body)
    assert obj["etag"] == hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert set(json.loads(body)) == {"external_process_id"}
    assert event["resources"] == [f"arn:aws:s3:::{event['detail']['bucket']['name']}"]


def test_sample_inputs_follow_the_contract(load_event):
    request = json.loads((ROOT / "events" / "training-request.json").read_text(encoding="utf-8"))
    direct = load_event("training-execution-input.json")
    assert direct == {"model": "demo", **request}

    start = load_event("training-start-watch.json")
    assert start["request"] == load_event("training-object-created.json")
    assert start["execution_id"].startswith("arn:aws:states:") and ":execution:" in start["execution_id"]

    check = load_event("training-check.json")
    assert set(check) == {"training", "poll"}
    assert set(check["training"]) == {"model", "external_process_id", "requested_at"}
    poll_keys = {"wait_seconds", "polls", "started_at", "deadline_at", "checked_at", "status", "state"}
    assert set(check["poll"]) == poll_keys | {"created_datetime", "updated_datetime"}

    archive = load_event("training-archive.json")
    assert set(archive) == {"source", "training", "poll", "execution_id"}
    assert archive["poll"]["state"] == "finished"
    obj = start["request"]["detail"]["object"]
    assert (archive["source"]["key"], archive["source"]["version_id"]) == (obj["key"], obj["version-id"])

    failure = load_event("training-record-failure.json")
    assert set(failure) == {"state", "execution_id"}
    assert failure["state"]["failed_step"] in TRAINING_STEPS
    assert set(failure["state"]["error"]) == {"Error", "Cause"}
    assert failures.is_training_state(failure["state"])
