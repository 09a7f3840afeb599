"""Where AWS itself is stricter than moto: keys outside the workflow's prefix, URL-encoded keys, a missing
summary.json without an unscoped ListBucket, and what a failure notification may carry."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from retrain_pipeline import retrain_steps
from retrain_pipeline.errors import KeyOutsidePrefix, SourceObjectNotFound

# Keys the pipeline writes itself, and other prefixes: Upload must never act on them.
OUTSIDE_INCOMING = ("results/demo/job-1/summary.json", "failed/demo/x.json", "training/demo/run.json")


def all_keys(stack: Any) -> set[str]:
    return set(stack.keys(""))


@pytest.mark.parametrize("key", OUTSIDE_INCOMING)
def test_upload_refuses_a_key_outside_incoming_without_touching_anything(stack: Any, key: str) -> None:
    event = stack.put(key, b'{"any": "thing"}')
    before = all_keys(stack)
    with pytest.raises(KeyOutsidePrefix, match="not under incoming/"):
        stack.upload(event)
    assert all_keys(stack) == before
    assert stack.emulator.admin.requests_log() == []  # no API call either


def test_a_folder_marker_outside_incoming_is_outside_the_prefix(stack: Any) -> None:
    event = stack.put("results/demo/", b"")
    with pytest.raises(KeyOutsidePrefix):
        stack.upload(event)


# Object keys: the event's key as sent wins when it exists, else its URL-decoded form.

AWKWARD_NAMES = ("my data (1).csv", "a+b.csv", "100% real.csv", "データ 2024.csv", "x%2By (1).csv")


@pytest.mark.parametrize("name", AWKWARD_NAMES)
@pytest.mark.parametrize("encode", [quote_plus, quote], ids=["plus-encoded", "percent-encoded"])
def test_a_url_encoded_key_is_resolved_to_the_object(stack: Any, name: str, encode: Any) -> None:
    key = f"incoming/demo/{name}"
    event = stack.put(key, stack.csv_bytes())
    encoded = "incoming/demo/" + encode(name)
    assert encoded != key
    event["detail"]["object"]["key"] = encoded
    state = stack.upload(event)
    assert state["source"]["key"] == key
    assert state["job"]["filename"] == name
    (upload,) = stack.emulator.admin.uploads()
    assert upload["size"] == len(stack.csv_bytes())


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_a_raw_key_is_used_as_sent_when_it_exists(stack: Any, name: str) -> None:
    key = f"incoming/demo/{name}"
    event = stack.put(key, stack.csv_bytes())
    state = stack.upload(event)
    assert state["source"]["key"] == key


def test_the_raw_key_wins_over_its_decoded_twin(stack: Any) -> None:
    stack.put("incoming/demo/a b.csv", stack.csv_bytes(seed=1))  # what "a+b.csv" would decode to
    event = stack.put("incoming/demo/a+b.csv", stack.csv_bytes(seed=2))
    state = stack.upload(event)
    assert state["source"]["key"] == "incoming/demo/a+b.csv"


def test_a_key_in_neither_form_is_a_clear_failure_naming_both(stack: Any) -> None:
    event = stack.put("incoming/demo/other.csv", stack.csv_bytes())
    event["detail"]["object"]["key"] = "incoming/demo/gone+file%281%29.csv"
    with pytest.raises(SourceObjectNotFound) as raised:
        stack.upload(event)
    message = str(raised.value)
    assert "incoming/demo/gone+file%281%29.csv" in message and "incoming/demo/gone file(1).csv" in message
    failure = stack.record_failure(stack.failed_state(event, raised.value, "Upload"))
    record = stack.read_json(failure["failure_key"])
    assert record["error"] == "SourceObjectNotFound" and record["message"] == message
    assert record["advice"]


# SwitchModel: on AWS, a GET of a missing key without an unscoped s3:ListBucket answers 403.


class AwsLikeS3:
    """A moto S3 client whose GetObject answers 403 AccessDenied for a missing key, as AWS does for a role
    whose ListBucket permission is scoped to a prefix."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)

    def get_object(self, **kwargs: Any) -> Any:
        try:
            return self._s3.get_object(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NoSuchKey":
                raise
            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject"
            ) from None


def test_a_missing_summary_does_not_turn_a_switched_model_into_a_failed_run(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = stack.wait_finished(stack.upload(stack.put("incoming/demo/s.csv", stack.csv_bytes())))
    state = stack.archive(state)
    stack.s3.delete_object(Bucket=stack.bucket, Key=state["archive"]["summary_key"])
    real = retrain_steps.aws_client

    def aws_like(name: str) -> Any:
        return AwsLikeS3(real(name)) if name == "s3" else real(name)

    aws_like.cache_clear = real.cache_clear  # type: ignore[attr-defined]
    monkeypatch.setattr(retrain_steps, "aws_client", aws_like)
    state = stack.switch(state)
    assert state["switch"]["switched"] is True
    assert len(stack.emulator.admin.switches()) == 1


def test_the_summary_existence_check_is_a_listing_not_a_get() -> None:
    """With a prefix-scoped ListBucket a listing answers "missing"; a GET would answer 403."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(s3) as stub:
        stub.add_response(
            "list_objects_v2",
            {"KeyCount": 0},
            {"Bucket": "b", "Prefix": "results/m/j/summary.json", "MaxKeys": ANY},
        )
        retrain_steps._record_switch(s3, "b", "results/m/j/summary.json", {"switched": True})
        stub.assert_no_pending_responses()


# The failure notification: curated from the record, never the state or a Cause.


def test_the_failure_notification_carries_no_cause_or_stack_trace(stack: Any) -> None:
    event = stack.put("incoming/demo/crash.csv", stack.csv_bytes())
    trace = ['  File "/var/task/app.py", line 3, in lambda_handler\n', "Traceback (most recent)"]
    message = "'NoneType' object is not subscriptable"
    state = stack.failed_with(event, "TypeError", message, "Upload", stackTrace=trace)
    output = stack.record_failure(state)
    notification = output["notification"]
    text = json.dumps(notification)
    assert "Traceback" not in text and "stackTrace" not in text and "/var/task" not in text
    assert "Cause" not in text and "detail" not in notification
    assert notification == {
        **notification,
        "outcome": "FAILED",
        "workflow": "retrain",
        "file": f"s3://{stack.bucket}/incoming/demo/crash.csv",
        "model": "demo",
        "error": "TypeError",
        "message": "'NoneType' object is not subscriptable",
        "failure_record": f"s3://{stack.bucket}/{output['failure_key']}",
        "step": "Upload",
    }
    assert notification["advice"]
