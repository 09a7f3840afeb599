"""What survives ``sam delete`` and a replacement, what the defaults delete, and which settings are
parameters: every stateful resource has a deliberate DeletionPolicy/UpdateReplacePolicy, files under
``incoming/`` never expire unless the user opts in, and the four former fixed settings are bounded
parameters."""

from __future__ import annotations

from typing import Any

import pytest

# Decided per resource (the README's "Remove the stack" explains each one).
RETAINED = {
    "DataBucket",  # your files, results and failure records
    "ApiKeysSecret",  # the API keys must survive an accidental delete
}
STATEFUL_TYPES = {
    "AWS::S3::Bucket",
    "AWS::SecretsManager::Secret",
    "AWS::DynamoDB::Table",
    "AWS::Logs::LogGroup",
    "AWS::KMS::Key",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
}


def _stateful(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] in STATEFUL_TYPES
    }


def test_every_stateful_resource_states_both_policies(sam_template):
    stateful = _stateful(sam_template)
    assert set(stateful) >= RETAINED
    for name, resource in stateful.items():
        expected = "Retain" if name in RETAINED else "Delete"
        assert resource.get("DeletionPolicy") == expected, name
        assert resource.get("UpdateReplacePolicy") == expected, name


def test_the_api_keys_secret_and_the_bucket_are_retained(sam_template):
    resources = sam_template["Resources"]
    for name in ("ApiKeysSecret", "DataBucket"):
        assert resources[name]["DeletionPolicy"] == "Retain"
        assert resources[name]["UpdateReplacePolicy"] == "Retain"


def test_the_kms_key_waits_before_it_is_deleted(sam_template):
    key = sam_template["Resources"]["NotificationKey"]["Properties"]
    assert 7 <= key["PendingWindowInDays"] <= 30


def _condition(template: dict[str, Any], node: Any, parameters: dict[str, str]) -> Any:
    """Evaluate the few condition functions the template uses (Not, Equals, Ref to a parameter)."""
    if isinstance(node, dict) and len(node) == 1:
        ((name, body),) = node.items()
        if name == "Ref":
            default = template["Parameters"][body].get("Default")
            return str(parameters.get(body, default))
        if name == "Fn::Not":
            return not _condition(template, body[0], parameters)
        if name == "Fn::Equals":
            left, right = (_condition(template, item, parameters) for item in body)
            return str(left) == str(right)
        if name == "Condition":
            return _condition(template, template["Conditions"][body], parameters)
    return node


def _lifecycle_rules(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The bucket's lifecycle rules as CloudFormation resolves them for these parameter values."""
    rules = {}
    for rule in template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
        if "Fn::If" in rule:
            condition, when_true, when_false = rule["Fn::If"]
            cond = template["Conditions"][condition]
            rule = when_true if _condition(template, cond, parameters) else when_false
            if rule == {"Ref": "AWS::NoValue"}:
                continue
        rules[rule["Id"]] = rule
    return rules


def test_incoming_files_never_expire_by_default(sam_template):
    parameter = sam_template["Parameters"]["IncomingExpirationDays"]
    assert parameter["Default"] == 0 and parameter["MinValue"] == 0
    rules = _lifecycle_rules(sam_template, {})
    assert "ExpireIncoming" not in rules
    assert not any("ExpirationInDays" in rule for rule in rules.values())
    # What remains only cleans up: older versions and abandoned multipart uploads.
    assert set(rules) == {"ExpireNoncurrentVersions", "AbortIncompleteMultipartUploads"}


def test_a_user_can_opt_in_to_expiring_incoming(sam_template):
    rules = _lifecycle_rules(sam_template, {"IncomingExpirationDays": "30"})
    rule = rules["ExpireIncoming"]
    assert rule["Status"] == "Enabled" and rule["Prefix"] == "incoming/"
    assert rule["ExpirationInDays"] == {"Ref": "IncomingExpirationDays"}


@pytest.mark.parametrize(
    ("variable", "parameter", "default", "low", "high"),
    [
        ("SECRET_MAX_AGE_SECONDS", "SecretMaxAgeSeconds", 300, 0, 3600),
        ("IDEMPOTENCY_EXPIRY_HOURS", "IdempotencyExpiryHours", 72, 24, 8760),
        ("SWITCH_LEASE_SECONDS", "SwitchLeaseSeconds", 600, 120, 3600),
        ("UPLOAD_ATTEMPTS", "UploadAttempts", 3, 1, 10),
    ],
)
def test_former_fixed_settings_are_bounded_parameters(sam_template, variable, parameter, default, low, high):
    variables = sam_template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables[variable] == {"Ref": parameter}
    spec = sam_template["Parameters"][parameter]
    assert spec["Type"] == "Number"
    assert (spec["Default"], spec["MinValue"], spec["MaxValue"]) == (default, low, high)


def test_the_switch_lease_outlasts_the_switch_function(sam_template):
    timeout = (
        sam_template["Resources"]["SwitchModelFunction"]["Properties"].get("Timeout")
        or sam_template["Globals"]["Function"]["Timeout"]
    )
    assert sam_template["Parameters"]["SwitchLeaseSeconds"]["MinValue"] > timeout


def test_idempotency_outlasts_event_redelivery(sam_template):
    """A redelivered event must still find its record: EventBridge retries up to MaximumEventAgeInSeconds."""
    ages = [
        event["Properties"]["RetryPolicy"]["MaximumEventAgeInSeconds"]
        for resource in sam_template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
        for event in resource["Properties"].get("Events", {}).values()
    ]
    assert ages
    assert sam_template["Parameters"]["IdempotencyExpiryHours"]["MinValue"] * 3600 >= max(ages)
