"""Redaction: presigned URLs lose their query, safe API parameters stay, urllib3's own logs are cleaned."""

from __future__ import annotations

import logging

import pytest
from prediction_one.http import redact_url
from prediction_one.redaction import redact_text

PRESIGNED = (
    "https://bucket.s3.ap-northeast-1.amazonaws.com/uploads/job%201/train.csv"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fap-northeast-1%2Fs3"
    "&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=0123456789abcdef0123456789abcdef"
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (PRESIGNED, "https://bucket.s3.ap-northeast-1.amazonaws.com/uploads/job%201/train.csv"),
        (
            "https://developer-api.predictionone.sony.biz/v1/external/retrain_jobs/upload_url?filename=a%20b.csv",
            "https://developer-api.predictionone.sony.biz/v1/external/retrain_jobs/upload_url?filename=a%20b.csv",
        ),
        (
            "/v1/external/models/results?external_process_id=p-1&token=zzz",
            "/v1/external/models/results?external_process_id=p-1",
        ),
        ("https://user:pass@host:8443/p?q=1#frag", "https://host:8443/p"),
        ("http://[::1]:9000/x?Signature=s", "http://[::1]:9000/x"),
        ("/v1/external/retrain_jobs/abc", "/v1/external/retrain_jobs/abc"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_url_never_raises():
    assert redact_url("http://[bad") == "<unparseable url>"
    assert redact_url(None) == "<not a url>"  # type: ignore[arg-type]


def test_redact_text_removes_queries_and_secrets():
    text = f"PUT {PRESIGNED} failed; key=the-api-key; see also /x?a=1&filename=f.csv"
    out = redact_text(text, ["the-api-key"])
    assert "0123456789abcdef" not in out
    assert "AKIAEXAMPLE" not in out
    assert "the-api-key" not in out
    assert "/x?filename=f.csv" in out
    assert "train.csv" in out


def test_redact_text_masks_bare_signing_parameters():
    out = redact_text("CanonicalQuery X-Amz-Signature=feedface&X-Amz-Credential=AKIA1 AWSAccessKeyId=AKIA2")
    assert "feedface" not in out and "AKIA1" not in out and "AKIA2" not in out


def test_question_marks_in_prose_are_kept():
    assert redact_text("Is it done? Not yet.") == "Is it done? Not yet."


def test_urllib3_debug_lines_are_redacted(caplog):
    import prediction_one.http  # noqa: F401 - installs the filter

    caplog.set_level(logging.DEBUG, logger="urllib3")
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s',
        "https",
        "bucket.s3.amazonaws.com",
        443,
        "PUT",
        "/uploads/train.csv?X-Amz-Signature=0123456789abcdef",
        "HTTP/1.1",
        200,
        0,
    )
    logging.getLogger("urllib3.util.retry").debug(
        "Incremented Retry for (url='%s'): %r", "/d?X-Amz-Signature=0123456789abcdef", None
    )
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert all("0123456789abcdef" not in m for m in messages)
    assert "/uploads/train.csv" in messages[0]
