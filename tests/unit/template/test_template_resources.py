"""template.yaml: settings, least-privilege roles, storage hardening, logging, alarms and outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from p1_retrain.local.intrinsics import placeholders, substitute
from tests.testdata import FUNCTIONS

ROOT = Path(__file__).resolve().parents[3]
TRAIN_WATCH_FUNCTIONS = ("StartWatchFunction", "CheckTrainingFunction", "ArchiveTrainingFunction")
RETRAIN_FUNCTIONS = tuple(name for name in FUNCTIONS if name not in TRAIN_WATCH_FUNCTIONS)
BUCKET_ARN = "DataBucket.Arn"
BUCKET = {"Fn::GetAtt": ["DataBucket", "Arn"]}
SECRET = {"Ref": "ApiKeysSecret"}
TABLE = {"Fn::GetAtt": ["StateTable", "Arn"]}
TABLE_WRITE = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def first_step(prefix: str) -> set[tuple[str, str]]:
    """A workflow's first step: reads the object that started it and claims it in the table."""
    return {
        ("s3:GetObject", f"s3:{prefix}*"),
        ("s3:GetObjectVersion", f"s3:{prefix}*"),
        ("s3:ListBucket", "bucket"),  # limited to the prefix: which encoding of the event's key exists
        ("secretsmanager:GetSecretValue", "secret"),
        *((action, "table") for action in TABLE_WRITE),
    }


def archiver(prefix: str) -> set[tuple[str, str]]:
    """An archive step: streams the results under ``prefix`` in parts and reads the zip's entries back."""
    return {
        ("secretsmanager:GetSecretValue", "secret"),
        ("s3:PutObject", f"s3:{prefix}*"),
        ("s3:AbortMultipartUpload", f"s3:{prefix}*"),
        ("s3:ListMultipartUploadParts", f"s3:{prefix}*"),
        ("s3:GetObject", f"s3:{prefix}*"),  # lists the archived zip's entries with ranged reads
    }


# What each function may do, as (action, resource) with S3 resources named by key prefix.
EXPECTED_PERMISSIONS: dict[str, set[tuple[str, str]]] = {
    "UploadFunction": first_step("incoming/"),
    "CheckStatusFunction": {("secretsmanager:GetSecretValue", "secret")},
    "ArchiveFunction": archiver("results/"),
    "SwitchModelFunction": {
        ("secretsmanager:GetSecretValue", "secret"),
        *((action, "table") for action in TABLE_WRITE),
        ("s3:GetObject", "s3:results/*"),
        ("s3:PutObject", "s3:results/*"),
        ("s3:ListBucket", "bucket"),  # limited to results/*: a missing summary.json reads as missing
    },
    "RecordFailureFunction": {("s3:PutObject", "s3:failed/*")},
    "StartWatchFunction": first_step("training/"),
    "CheckTrainingFunction": {("secretsmanager:GetSecretValue", "secret")},
    # The training archive also asks "already archived?" with GetObject, and lists results/*/training/*
    # (test_train_watch_template.py).
    "ArchiveTrainingFunction": archiver("results/*/training/") | {("s3:ListBucket", "bucket")},
}
SAM_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_name(resource: Any) -> str:
    """A readable name for a policy resource: ``s3:<prefix>``, ``secret``, ``table`` or the raw value."""
    if resource == SECRET:
        return "secret"
    if resource == TABLE:
        return "table"
    if resource == BUCKET:
        return "bucket"
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        text = resource["Fn::Sub"]
        prefix = "${" + BUCKET_ARN + "}/"
        if isinstance(text, str) and text.startswith(prefix):
            return "s3:" + text.removeprefix(prefix)
    return json.dumps(resource)


def permissions(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    granted = set()
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                granted.add((action, resource_name(resource)))
    return granted


def settings_table() -> list[tuple[list[str], list[str], str]]:
    """Rows of the settings table in docs/architecture.md: (variables, parameters, default)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
        variables = re.findall(r"`([A-Z][A-Z0-9_]*\*?)`", first)
        parameters = re.findall(r"`([A-Z][a-z][A-Za-z]+)`", first)
        rows.append((variables, parameters, default))
    assert len(rows) >= 10, "the settings table of docs/architecture.md was not found"
    return rows


@pytest.fixture(scope="module")
def globals_function(sam_template) -> dict[str, Any]:
    return sam_template["Globals"]["Function"]


def test_functions_share_runtime_tracing_and_layers(globals_function):
    assert globals_function["Runtime"] == "python3.13"
    assert globals_function["Architectures"] == ["arm64"]
    assert globals_function["Tracing"] == "Active"
    assert globals_function["Handler"] == "app.lambda_handler"
    assert globals_function["Timeout"] > 0 and globals_function["MemorySize"] >= 128
    # Only the project's own layer: it ships the Powertools the tests run (no AWS-managed layer).
    assert globals_function["Layers"] == [{"Ref": "PredictionOneLayer"}]


def test_every_documented_setting_reaches_the_functions(sam_template, globals_function):
    variables = globals_function["Environment"]["Variables"]
    parameters = sam_template["Parameters"]
    for names, parameter_names, default in settings_table():
        if names == ["POWERTOOLS_*"]:
            powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
            assert powertools <= set(variables)
            continue
        for name in names:
            assert name in variables, f"{name} is documented but not set"
        if not parameter_names:
            continue
        defaults = [item.strip().strip("`") for item in default.split(" / ")]
        assert len(names) == len(parameter_names) == len(defaults), names
        for name, parameter, documented in zip(names, parameter_names, defaults, strict=True):
            assert variables[name] == {"Ref": parameter}, name
            assert str(parameters[parameter]["Default"]) == documented, (
                f"{parameter} default differs from the docs"
            )


def test_the_code_falls_back_to_the_templates_metrics_namespace(globals_function):
    from retrain_pipeline.telemetry import DEFAULT_NAMESPACE

    assert globals_function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == DEFAULT_NAMESPACE


@pytest.mark.parametrize(("logical_id", "folder"), FUNCTIONS.items())
def test_each_handler_is_its_steps_logic_only(logical_id, folder):
    """Logger, tracer, metrics, deadline and error reporting come from ``step_handler``: a handler module
    holds no Powertools set-up of its own and names its step by the shared constant."""
    text = (ROOT / "functions" / folder / "app.py").read_text(encoding="utf-8")
    assert "@step_handler(" in text, folder
    for setup in ("Logger(", "Tracer(", "Metrics(", "new_tracer", "new_metrics", "publish(", "reported("):
        assert setup not in text, f"{folder}: {setup}"
    assert not re.search(r'@step_handler\(\s*"', text), f"{folder}: a step name literal"


def test_resource_settings_name_the_stack_resources(globals_function):
    variables = globals_function["Environment"]["Variables"]
    assert variables["DATA_BUCKET"] == {"Ref": "DataBucket"}
    assert variables["SECRET_ID"] == {"Ref": "ApiKeysSecret"}
    assert variables["STATE_TABLE"] == {"Ref": "StateTable"}
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"  # responses may hold presigned URLs
    assert all(isinstance(value, (str, dict)) for value in variables.values())


def test_parameters_have_constraints(sam_template):
    for name, parameter in sam_template["Parameters"].items():
        assert parameter.get("Description"), f"{name} has no Description"
        assert "Default" in parameter, f"{name} has no Default"
        if parameter["Type"] == "Number" and "AllowedValues" not in parameter:
            assert "MinValue" in parameter, f"{name} has no MinValue"
    assert sam_template["Parameters"]["AutoSwitch"]["AllowedValues"] == ["true", "false"]
    assert sam_template["Parameters"]["AutoSwitch"]["Default"] == "false"


@pytest.mark.parametrize(("logical_id", "folder"), FUNCTIONS.items())
def test_functions_point_at_their_handlers(sam_template, logical_id, folder):
    properties = sam_template["Resources"][logical_id]["Properties"]
    assert properties["CodeUri"] == f"functions/{folder}/"
    assert "Handler" not in properties and "Runtime" not in properties  # from Globals
    app = ROOT / "functions" / folder / "app.py"
    assert app.is_file(), f"{app} is missing"
    assert "def lambda_handler(" in app.read_text(encoding="utf-8")


def test_functions_are_all_listed(sam_template):
    assert set(resources_of(sam_template, "AWS::Serverless::Function")) == set(FUNCTIONS)


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_function_holds_only_the_permissions_it_uses(sam_template, logical_id):
    policies = sam_template["Resources"][logical_id]["Properties"]["Policies"]
    assert len(policies) == 1 and set(policies[0]) == {"Statement"}, "only inline statements, no templates"
    assert permissions(policies[0]["Statement"]) == EXPECTED_PERMISSIONS[logical_id]


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_the_translated_roles_add_only_logging_and_tracing(cfn_template, logical_id):
    role = cfn_template["Resources"][f"{logical_id}Role"]["Properties"]
    assert set(role["ManagedPolicyArns"]) <= SAM_MANAGED_POLICIES
    assert len(role["Policies"]) == 1
    assert permissions(role["Policies"][0]["PolicyDocument"]["Statement"]) == EXPECTED_PERMISSIONS[logical_id]


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_function_has_a_log_group_with_retention(sam_template, logical_id):
    log_group = sam_template["Resources"][logical_id.removesuffix("Function") + "LogGroup"]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"}
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_layer_builds_for_arm64_python313(sam_template):
    layer = sam_template["Resources"]["PredictionOneLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/pipeline/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    for package in ("prediction_one", "retrain_pipeline"):
        assert (ROOT / "layers" / "pipeline" / package / "__init__.py").is_file()


def test_bucket_is_private_encrypted_versioned_and_emits_events(sam_template):
    bucket = sam_template["Resources"]["DataBucket"]
    properties = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert "BucketName" not in properties and "AccessControl" not in properties


def test_bucket_lifecycle_expires_only_incoming_and_cleans_up(sam_template):
    # ExpireIncoming exists only when IncomingExpirationDays > 0 (see test_deletion_policies.py).
    rules = {}
    for rule in sam_template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
        rule = rule["Fn::If"][1] if "Fn::If" in rule else rule
        rules[rule["Id"]] = rule
    assert all(rule["Status"] == "Enabled" for rule in rules.values())
    expiring = [rule for rule in rules.values() if "ExpirationInDays" in rule]
    assert expiring == [rules["ExpireIncoming"]]
    assert rules["ExpireIncoming"]["Prefix"] == "incoming/"
    assert rules["ExpireIncoming"]["ExpirationInDays"] == {"Ref": "IncomingExpirationDays"}
    assert any("NoncurrentVersionExpiration" in rule for rule in rules.values())
    assert any(
        rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for rule in rules.values()
    )


def test_bucket_policy_refuses_plain_http(sam_template):
    policy = sam_template["Resources"]["DataBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "DataBucket"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["DataBucket", "Arn"]},
        {"Fn::Sub": "${DataBucket.Arn}/*"},
    ]


def test_secret_starts_empty_and_documents_its_format(sam_template):
    properties = sam_template["Resources"]["ApiKeysSecret"]["Properties"]
    assert json.loads(properties["SecretString"]) == {}
    assert '"api_key"' in properties["Description"] and '"auto_switch"' in properties["Description"]
    assert "GenerateSecretString" not in properties


def test_state_table_matches_idempotency_and_gates(sam_template):
    properties = sam_template["Resources"]["StateTable"]["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_topic_is_encrypted_with_a_key_alarms_can_use(sam_template):
    resources = sam_template["Resources"]
    assert resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "NotificationKey"}
    key = resources["NotificationKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    principals = [statement["Principal"] for statement in key["KeyPolicy"]["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals
    subscription = resources["NotificationEmailSubscription"]
    assert subscription["Condition"] == "HasNotificationEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert sam_template["Conditions"]["HasNotificationEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }
    assert sam_template["Parameters"]["NotificationEmail"]["Default"] == ""


def test_state_machine_is_standard_logged_and_traced(sam_template, retrain_properties):
    assert retrain_properties["Type"] == "STANDARD"
    assert retrain_properties["DefinitionUri"] == "statemachine/retrain.asl.json"
    assert retrain_properties["Tracing"] == {"Enabled": True}
    logging = retrain_properties["Logging"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is True
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["RetrainStateMachineLogGroup", "Arn"]}}}
    ]
    log_group = sam_template["Resources"]["RetrainStateMachineLogGroup"]["Properties"]
    assert log_group["LogGroupName"]["Fn::Sub"].startswith("/aws/vendedlogs/states/")
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_state_machine_may_invoke_exactly_its_functions_and_publish(retrain_properties):
    policies = retrain_properties["Policies"]
    invoked = [p["LambdaInvokePolicy"]["FunctionName"] for p in policies if "LambdaInvokePolicy" in p]
    assert sorted(ref["Ref"] for ref in invoked) == sorted(RETRAIN_FUNCTIONS)
    assert {
        "SNSPublishMessagePolicy": {"TopicName": {"Fn::GetAtt": ["NotificationTopic", "TopicName"]}}
    } in policies
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    granted = permissions(statements)
    assert ("kms:GenerateDataKey*", json.dumps({"Fn::GetAtt": ["NotificationKey", "Arn"]})) in granted
    assert ("logs:CreateLogDelivery", json.dumps("*")) in granted
    actions = {action for action, _ in granted}
    assert all(action.split(":")[0] in {"kms", "logs"} for action in actions), actions


def test_state_machine_role_is_traced(cfn_template):
    role = cfn_template["Resources"]["RetrainStateMachineRole"]["Properties"]
    assert "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess" in role["ManagedPolicyArns"]


def test_alarms_notify_the_topic(sam_template):
    alarms = resources_of(sam_template, "AWS::CloudWatch::Alarm")
    assert {
        "RetrainExecutionsFailedAlarm",
        "RetrainExecutionsTimedOutOrAbortedAlarm",
        "DeadLetterQueueAlarm",
        "NotificationFailedAlarm",
    } <= set(alarms)
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "NotificationTopic"}], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name
    failed = alarms["RetrainExecutionsFailedAlarm"]["Properties"]
    assert (failed["Namespace"], failed["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert failed["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "RetrainStateMachine"}}]
    depth = alarms["DeadLetterQueueAlarm"]["Properties"]
    assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (depth["ComparisonOperator"], depth["Threshold"]) == ("GreaterThanThreshold", 0)


def test_the_notification_metric_filter_watches_a_real_state(sam_template, retrain_asl):
    metric_filter = sam_template["Resources"]["NotificationFailedMetricFilter"]["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "RetrainStateMachineLogGroup"}
    (state_name,) = re.findall(r'\$\.details\.name = "(\w+)"', metric_filter["FilterPattern"])
    assert retrain_asl["States"][state_name]["Type"] == "Succeed"
    assert state_name == retrain_asl["States"]["NotifySuccess"]["Catch"][0]["Next"]
    transformation = metric_filter["MetricTransformations"][0]
    alarm = sam_template["Resources"]["NotificationFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        transformation["MetricNamespace"],
        transformation["MetricName"],
    )


def test_dashboard_body_is_json_and_shows_every_function(sam_template):
    dashboard = sam_template["Resources"]["RetrainDashboard"]["Properties"]
    body_template, variables = dashboard["DashboardBody"]["Fn::Sub"]
    used = placeholders(body_template)
    resources = set(sam_template["Resources"]) | {"RetrainStateMachineObjectCreated"}
    assert used <= resources | set(variables) | {"AWS::Region"}
    assert set(FUNCTIONS) <= used and "RetrainStateMachine" in used
    body = json.loads(substitute(body_template, lambda name: name.replace(":", "-")))
    titles = [widget["properties"]["title"] for widget in body["widgets"]]
    assert len(titles) == len(set(titles)) >= 5


def test_outputs_name_what_operators_need(sam_template):
    assert {
        "DataBucketName",
        "RetrainStateMachineArn",
        "ApiKeysSecretName",
        "ApiKeysSecretArn",
        "NotificationTopicArn",
        "StateTableName",
        "DeadLetterQueueUrl",
        "DashboardUrl",
    } <= set(sam_template["Outputs"])
    secret = sam_template["Resources"]["ApiKeysSecret"]["Properties"]
    assert sam_template["Outputs"]["ApiKeysSecretName"]["Value"] == secret["Name"]


def test_no_credentials_in_the_template():
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert not re.search(r"(?i)x-api-key|AKIA[0-9A-Z]{16}|aws_secret_access_key", text)
