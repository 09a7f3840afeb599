"""At most MaxConcurrentUploads uploads run at once; the excess waits in its execution, nothing fails.

Reserved concurrency on the Upload function bounds the uploads (and so the new retrain jobs) a bulk drop
starts against Prediction One's unknown rate limits. Step Functions gets Lambda.TooManyRequestsException
for an invocation beyond it; the Upload task must retry that for as long as a bulk drop takes to drain.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

THROTTLED = "Lambda.TooManyRequestsException"
UPLOAD_TIMEOUT_SECONDS = 900
# What the retry span must cover: a drop of this many files, each upload taking the function's timeout.
BULK_DROP_FILES = 100


def test_the_setting_exists_with_a_small_default(sam_template):
    parameter = sam_template["Parameters"]["MaxConcurrentUploads"]
    assert parameter["Type"] == "Number"
    assert 1 <= parameter["Default"] <= 10
    assert parameter["MinValue"] == 0  # 0: no reservation, for accounts whose quota cannot spare one


def test_the_upload_function_reserves_that_concurrency(sam_template):
    upload = sam_template["Resources"]["UploadFunction"]["Properties"]
    assert upload["ReservedConcurrentExecutions"] == {
        "Fn::If": ["LimitsUploads", {"Ref": "MaxConcurrentUploads"}, {"Ref": "AWS::NoValue"}]
    }
    assert sam_template["Conditions"]["LimitsUploads"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MaxConcurrentUploads"}, 0]}]
    }
    assert upload["Timeout"] == UPLOAD_TIMEOUT_SECONDS


def test_the_deployed_function_carries_it(cfn_template):
    function = cfn_template["Resources"]["UploadFunction"]
    assert function["Type"] == "AWS::Lambda::Function"
    assert function["Properties"]["ReservedConcurrentExecutions"]["Fn::If"][0] == "LimitsUploads"


def retry_span_seconds(retrier: dict[str, Any]) -> float:
    """The longest total wait of a retrier (before jitter): sum of min(interval * rate^n, cap)."""
    interval = float(retrier.get("IntervalSeconds", 1))
    rate = float(retrier.get("BackoffRate", 2.0))
    cap = float(retrier.get("MaxDelaySeconds", math.inf))
    return sum(min(interval * rate**attempt, cap) for attempt in range(int(retrier.get("MaxAttempts", 3))))


def upload_retrier(asl: dict[str, Any]) -> dict[str, Any]:
    """The retrier Step Functions applies to a throttled Upload (the first that names the error)."""
    for retrier in asl["States"]["Upload"]["Retry"]:
        if THROTTLED in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]:
            return retrier
    pytest.fail(f"Upload does not retry {THROTTLED}")


def test_a_throttled_upload_is_retried_until_a_bulk_drop_has_drained(
    sam_template, retrain_properties, retrain_text, render_asl
):
    defaults = {
        name: str(sam_template["Parameters"][reference["Ref"]]["Default"])
        for name, reference in retrain_properties["DefinitionSubstitutions"].items()
        if isinstance(reference, dict) and reference.get("Ref") in sam_template["Parameters"]
    }
    retrier = upload_retrier(render_asl(retrain_text, defaults))
    slots = int(sam_template["Parameters"]["MaxConcurrentUploads"]["Default"])
    needed = math.ceil(BULK_DROP_FILES / slots) * UPLOAD_TIMEOUT_SECONDS
    # With FULL jitter each delay is drawn from [0, delay]: half the span is what to count on.
    factor = 0.5 if retrier.get("JitterStrategy") == "FULL" else 1.0
    assert factor * retry_span_seconds(retrier) >= needed, f"{retrier} spans {retry_span_seconds(retrier)} s"


def test_the_span_computation():
    retrier = {"IntervalSeconds": 2, "BackoffRate": 2.0, "MaxAttempts": 6, "MaxDelaySeconds": 120}
    assert retry_span_seconds(retrier) == 2 + 4 + 8 + 16 + 32 + 64
    assert retry_span_seconds({**retrier, "MaxAttempts": 8}) == 126 + 120 + 120
