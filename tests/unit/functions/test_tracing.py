"""X-Ray never sees a presigned URL's query string or an API key, even when a presigned request fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.functions import xray_probe

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_a_failing_presigned_download_leaves_no_signature_in_the_trace() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.unit.functions.xray_probe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] == "ConnectionFailed"  # the download really failed
    captured = "\n".join(result["entities"])
    assert "## lambda_handler" in captured  # the recorder did record the handler
    assert "secretsmanager" in captured.lower() or "s3" in captured.lower()  # and the AWS SDK calls
    assert xray_probe.SIGNATURE not in captured
    assert "X-Amz-Signature" not in captured
    assert xray_probe.API_KEY not in captured
    assert "Max retries exceeded" not in captured  # requests' message (it holds the full URL) is absent
