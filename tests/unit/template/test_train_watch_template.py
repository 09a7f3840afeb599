"""template.yaml for the training watcher: state machine, rule on training/, roles, alarms, outputs, docs."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern
from retrain_pipeline import errors as pipeline_errors

from tests.unit.template.conftest import resolve_bucket

ROOT = Path(__file__).resolve().parents[3]
RULE = "TrainWatchStateMachineTrainingRequestCreated"  # the rule SAM generates from the event
FUNCTIONS = (
    "StartWatchFunction",
    "CheckTrainingFunction",
    "ArchiveTrainingFunction",
    "RecordFailureFunction",
)


@pytest.fixture(scope="module")
def watcher(sam_template) -> dict[str, Any]:
    return sam_template["Resources"]["TrainWatchStateMachine"]["Properties"]


@pytest.fixture(scope="module")
def rule(watcher) -> dict[str, Any]:
    assert list(watcher["Events"]) == ["TrainingRequestCreated"]
    assert watcher["Events"]["TrainingRequestCreated"]["Type"] == "EventBridgeRule"
    return watcher["Events"]["TrainingRequestCreated"]["Properties"]


@pytest.fixture(scope="module")
def patterns(rule, retrain_properties) -> dict[str, EventPattern]:
    retrain = retrain_properties["Events"]["ObjectCreated"]["Properties"]["Pattern"]
    return {
        "watcher": EventPattern.load(json.dumps(resolve_bucket(rule["Pattern"]))),
        "retrain": EventPattern.load(json.dumps(resolve_bucket(retrain))),
    }


def event_for(base: dict[str, Any], key: str, size: int) -> dict[str, Any]:
    event = copy.deepcopy(base)
    event["detail"]["object"].update(key=key, size=size)
    return event


def test_state_machine_is_standard_logged_and_traced(sam_template, watcher):
    assert watcher["Type"] == "STANDARD"
    assert watcher["DefinitionUri"] == "statemachine/train_watch.asl.json"
    assert watcher["Tracing"] == {"Enabled": True}
    assert watcher["Logging"]["Level"] == "ALL" and watcher["Logging"]["IncludeExecutionData"] is True
    assert watcher["Logging"]["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["TrainWatchStateMachineLogGroup", "Arn"]}}}
    ]
    log_group = sam_template["Resources"]["TrainWatchStateMachineLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/vendedlogs/states/${AWS::StackName}-train-watch"}
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_state_machine_may_invoke_exactly_its_functions_and_publish(watcher, cfn_template):
    policies = watcher["Policies"]
    invoked = [p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in policies if "LambdaInvokePolicy" in p]
    assert sorted(invoked) == sorted(FUNCTIONS)
    assert {
        "SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["NotificationTopic", "TopicName"]}}
    } in policies
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    actions = {action for statement in statements for action in statement["Action"]}
    assert all(action.split(":")[0] in {"kms", "logs"} for action in actions), actions
    kms = [s for s in statements if s["Sid"] == "EncryptNotifications"]
    assert kms[0]["Resource"] == {"Fn::GetAtt": ["NotificationKey", "Arn"]}
    role = cfn_template["Resources"]["TrainWatchStateMachineRole"]["Properties"]
    assert "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess" in role["ManagedPolicyArns"]


def test_archive_may_list_only_the_training_results(sam_template):
    statements = sam_template["Resources"]["ArchiveTrainingFunction"]["Properties"]["Policies"][0][
        "Statement"
    ]
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Resource"] == {"Fn::GetAtt": ["DataBucket", "Arn"]}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "results/*/training/*"}}
    for statement in statements:
        if statement is not listing:
            assert "Condition" not in statement


def test_the_functions_are_thin_handlers_with_their_own_settings(sam_template):
    archive = sam_template["Resources"]["ArchiveTrainingFunction"]["Properties"]
    assert archive["Timeout"] == 900 and archive["MemorySize"] >= 1024  # streams large result files
    for name in ("StartWatchFunction", "CheckTrainingFunction"):
        check = sam_template["Resources"][name]["Properties"]
        assert "Timeout" not in check  # one status call: the Globals timeout
    for name in ("StartWatchFunction", "CheckTrainingFunction", "ArchiveTrainingFunction"):
        assert "Environment" not in sam_template["Resources"][name]["Properties"]  # Globals only


def test_the_sample_request_starts_the_watcher_and_not_the_retrain(patterns, load_event):
    event = load_event("training-object-created.json")
    assert patterns["watcher"].matches_event(event)
    assert not patterns["retrain"].matches_event(event)
    assert not patterns["watcher"].matches_event(load_event("object-created.json"))


@pytest.mark.parametrize(
    ("key", "size"),
    [
        ("training/demo/run.json", 47),
        ("training/demo/2024/06/run.json", 47),
        ("training/demo/empty.json", 0),  # reported as BadTrainingRequest
        ("training/demo/notes.txt", 10),  # reported as BadTrainingRequest, not silently dropped
        ("training/loose.json", 10),  # reported as KeyOutsideModelFolder
    ],
)
def test_objects_under_training_match(patterns, load_event, key, size):
    assert patterns["watcher"].matches_event(event_for(load_event("training-object-created.json"), key, size))


@pytest.mark.parametrize(
    ("key", "size"),
    [
        ("training/", 0),  # folder markers start nothing
        ("training/demo/", 0),
        ("results/demo/training/p-1/summary.json", 100),  # the watcher's own output never triggers it
        ("results/demo/training/p-1/train_result.zip", 100),
        ("failed/demo/run.json.json", 100),
        ("incoming/demo/run.json", 100),
        ("Training/demo/run.json", 100),
        ("demo/training/run.json", 100),
    ],
)
def test_other_objects_do_not_match(patterns, load_event, key, size):
    assert not patterns["watcher"].matches_event(
        event_for(load_event("training-object-created.json"), key, size)
    )


def test_other_buckets_and_event_types_do_not_match(patterns, load_event):
    base = load_event("training-object-created.json")
    other = copy.deepcopy(base)
    other["detail"]["bucket"]["name"] = "someone-elses-bucket"
    deleted = copy.deepcopy(base)
    deleted["detail-type"] = "Object Deleted"
    assert not patterns["watcher"].matches_event(other)
    assert not patterns["watcher"].matches_event(deleted)


def test_undeliverable_events_go_to_the_shared_dead_letter_queue(rule, cfn_template):
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert rule["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600
    assert rule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    generated = cfn_template["Resources"][RULE]
    assert generated["Type"] == "AWS::Events::Rule"
    (target,) = generated["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "TrainWatchStateMachine"}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}
    policy = cfn_template["Resources"]["EventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    allowed = [
        s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in policy["Statement"] if s["Effect"] == "Allow"
    ]
    assert {"Fn::GetAtt": [RULE, "Arn"]} in allowed[0]


def test_alarms_watch_the_watcher(sam_template, cfn_template):
    resources = sam_template["Resources"]
    failed = resources["TrainWatchExecutionsFailedAlarm"]["Properties"]
    assert (failed["Namespace"], failed["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert failed["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "TrainWatchStateMachine"}}]
    stopped = resources["TrainWatchExecutionsTimedOutOrAbortedAlarm"]["Properties"]
    watched = {m["MetricStat"]["Metric"]["MetricName"] for m in stopped["Metrics"] if "MetricStat" in m}
    assert watched == {"ExecutionsTimedOut", "ExecutionsAborted"}
    assert all(
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == {"Ref": "TrainWatchStateMachine"}
        for m in stopped["Metrics"]
        if "MetricStat" in m
    )
    rule = resources["TrainingRuleFailedInvocationsAlarm"]["Properties"]
    assert rule["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": RULE}}]
    assert RULE in cfn_template["Resources"]


def test_a_lost_success_notification_is_alarmed_like_the_retrains(
    sam_template, render_asl, state_machine_sources
):
    states = render_asl(state_machine_sources["TrainWatchStateMachine"][1])["States"]
    ours = sam_template["Resources"]["TrainWatchNotificationFailedMetricFilter"]["Properties"]
    theirs = sam_template["Resources"]["NotificationFailedMetricFilter"]["Properties"]
    assert ours["LogGroupName"] == {"Ref": "TrainWatchStateMachineLogGroup"}
    (state_name,) = re.findall(r'\$\.details\.name = "(\w+)"', ours["FilterPattern"])
    assert state_name == states["NotifySuccess"]["Catch"][0]["Next"]
    assert states[state_name]["Type"] == "Succeed"
    assert ours["MetricTransformations"] == theirs["MetricTransformations"]  # one metric, one alarm


def test_dashboard_and_outputs_show_the_watcher(sam_template):
    body = sam_template["Resources"]["RetrainDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    for name in (
        "TrainWatchStateMachine",
        "StartWatchFunction",
        "CheckTrainingFunction",
        "ArchiveTrainingFunction",
    ):
        assert "${" + name + "}" in body
    output = sam_template["Outputs"]["TrainWatchStateMachineArn"]
    assert output["Value"] == {"Ref": "TrainWatchStateMachine"}
    assert "external_process_id" in output["Description"]


def test_the_contract_documents_the_watcher():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Training watcher", 1)[1].split("\n## ", 1)[0]
    for name in (
        "StartWatch",
        "CheckTraining",
        "ArchiveTraining",
        "RecordFailure",
        "TrainingFailed",
        "TrainingDeadlineExceeded",
        "TrainingResultNotAvailable",
        "BadTrainingRequest",
        "results/<model>/training/<external_process_id>/",
        "already_archived",
    ):
        assert name in section, name
    for error in ("TrainingFailed", "TrainingDeadlineExceeded", "TrainingResultNotAvailable"):
        assert issubclass(getattr(pipeline_errors, error), pipeline_errors.PermanentPipelineError)
