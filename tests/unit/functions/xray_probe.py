"""Run the Archive handler with tracing on and a real X-Ray recorder, against a Prediction One stand-in
whose results URL is presigned and unreachable; print every entity the recorder emitted, as JSON lines.

Run in its own process (``test_tracing.py``, ``python -m tests.unit.functions.xray_probe`` from the
repository's root): tracing patches libraries process-wide.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from tests.fakes import FakeContext, JsonHandler, serving

ROOT = Path(__file__).resolve().parents[3]
SIGNATURE = "f00dfeedf00dfeedf00dfeedf00dfeed"
API_KEY = "probe-secret-api-key"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandIn(JsonHandler):
    download_url = ""

    def do_GET(self) -> None:
        self.send_json(200, {"status": "job_finished", "download_url": StandIn.download_url})


class Capture:
    """An X-Ray emitter that keeps what it would send to the daemon."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_entity(self, entity: object) -> None:
        self.sent.append(entity.serialize())  # type: ignore[attr-defined]

    def set_daemon_address(self, address: object) -> None:
        pass

    @property
    def ip(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return 2000


def main() -> None:
    StandIn.download_url = (
        f"http://127.0.0.1:{closed_port()}/results/job-1/result.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Signature={SIGNATURE}"
    )
    with serving(StandIn) as api_url:
        error, entities = archive_traced(api_url)
    print(json.dumps({"error": error, "entities": entities}))


def archive_traced(api_url: str) -> tuple[str | None, list[str]]:
    """Run the Archive handler once, traced, against ``api_url``: the error it raised, what X-Ray got."""
    os.environ.update(
        {
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "archive"),  # Powertools: tracing on
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "API_BASE_URL": api_url,
            "API_MAX_RETRIES": "0",
            "DATA_BUCKET": "probe-bucket",
            "SECRET_ID": "probe-secret",
            "POWERTOOLS_SERVICE_NAME": "probe",
        }
    )
    os.environ.pop("POWERTOOLS_TRACE_DISABLED", None)
    sys.path[:0] = [str(ROOT / "layers" / "pipeline"), str(ROOT / "functions" / "archive")]

    import boto3
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.context import Context
    from moto import mock_aws

    capture = Capture()
    xray_recorder.configure(
        emitter=capture, context=Context(), sampling=False, context_missing="IGNORE_ERROR"
    )
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="probe-bucket")
        boto3.client("secretsmanager").create_secret(
            Name="probe-secret", SecretString=json.dumps({"demo": API_KEY})
        )
        import app  # the handler module: its Tracer patches what it patches now

        context = FakeContext(
            function_name="archive",
            memory_limit_in_mb=512,
            invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:archive",
            aws_request_id="probe-request",
            remaining_ms=60_000,
        )
        event = {
            "source": {"bucket": "probe-bucket", "key": "incoming/demo/a.csv", "etag": "e", "size": 3},
            "job": {"model": "demo", "retrain_job_id": "job-1"},
            "poll": {"status": "job_finished", "state": "finished"},
            "execution_id": "arn:aws:states:us-east-1:123456789012:execution:retrain:probe",
        }
        xray_recorder.begin_segment("probe")
        error = None
        try:
            app.lambda_handler(event, context)
        except Exception as raised:  # the failing download is the point
            error = type(raised).__name__
        xray_recorder.end_segment()
    return error, capture.sent


if __name__ == "__main__":
    main()
