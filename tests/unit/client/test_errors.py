"""Error mapping: every documented row by code + exact message, and every odd shape a gateway sends."""

from __future__ import annotations

import json
import pickle

import pytest
from prediction_one import errors
from prediction_one.errors import (
    DOCUMENTED_ERRORS,
    AccessDenied,
    ApiKeyInvalid,
    BadRequest,
    ConfigurationFileNotFound,
    PermanentError,
    PredictionOneError,
    RateLimited,
    ServerError,
    TransientError,
    UnexpectedResponse,
    UploadRejected,
    UrlExpired,
    error_from_response,
    parse_retry_after,
)

ENDPOINT = "GET /v1/external/retrain_jobs/abc"

# The documented rows (docs/development.md), written out independently of the classes under test.
ROWS = [
    (4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "invalid_api_key.", "ApiKeyInvalid", "does not exist"),
    (4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "Inactive_credential.", "CredentialInactive", "incorrect"),
    (4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "Not_found_credential.", "CredentialNotFound", "incorrect"),
    (4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "This user may be deleted.", "UserDeleted", "user"),
    (4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "This model may be deleted.", "ModelDeleted", "model"),
    (4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "This job may be deleted.", "JobDeleted", "job"),
    (
        4001000204,
        "PREDA_EXTERNAL_BAD_REQUEST",
        "Not found retrain job.",
        "RetrainJobNotFound",
        "retrain_job_id",
    ),
    (4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "Not found classifier.", "ClassifierNotFound", "model API"),
    (
        4001000204,
        "PREDA_EXTERNAL_BAD_REQUEST",
        "Retrain job is not finished.",
        "RetrainJobNotFinished",
        "complete",
    ),
    (
        5001000201,
        "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR",
        "Not found configuration_file.",
        "ConfigurationFileNotFound",
        "configuration file",
    ),
]


def body(code, error, message) -> bytes:
    return json.dumps({"code": code, "error": error, "message": message}).encode()


@pytest.mark.parametrize(("code", "error", "message", "name", "words"), ROWS)
def test_every_documented_row_has_its_own_class(code, error, message, name, words):
    status = int(str(code)[:3])
    exc = error_from_response(status, body(code, error, message), endpoint=ENDPOINT)
    assert type(exc).__name__ == name
    assert (exc.code, exc.error, exc.api_message, exc.http_status, exc.endpoint) == (
        code,
        error,
        message,
        status,
        ENDPOINT,
    )
    assert exc.describe().startswith(f"{message} ({code} {error}): ")
    assert words in exc.describe()
    assert ENDPOINT in str(exc)
    assert isinstance(exc, TransientError) is (name == "ConfigurationFileNotFound")
    assert isinstance(exc, PermanentError) is (name != "ConfigurationFileNotFound")


def test_the_table_of_classes_matches_the_documented_rows():
    assert [(c.documented_code, c.documented_message, c.__name__) for c in DOCUMENTED_ERRORS] == [
        (code, message, name) for code, _, message, name, _ in ROWS
    ]


def test_describe_in_plain_words():
    exc = error_from_response(
        400, body(4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "invalid_api_key."), endpoint="x"
    )
    assert (
        exc.describe()
        == "invalid_api_key. (4001000204 PREDA_EXTERNAL_BAD_REQUEST): the API key does not exist"
    )


@pytest.mark.parametrize("message", ["invalid_api_key", "Invalid_api_key.", "Something new.", "", None, 42])
def test_other_bad_request_messages_are_bad_request(message):
    exc = error_from_response(400, body(4001000204, "PREDA_EXTERNAL_BAD_REQUEST", message), endpoint=ENDPOINT)
    assert type(exc) is BadRequest
    assert isinstance(exc, PermanentError)
    assert exc.code == 4001000204


def test_code_as_a_string_still_matches():
    exc = error_from_response(400, body("4001000204", "X", "Not found classifier."), endpoint=ENDPOINT)
    assert type(exc).__name__ == "ClassifierNotFound"


def test_internal_error_code_with_another_message_is_a_server_error():
    exc = error_from_response(
        500,
        body(5001000201, "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR", "Internal server error."),
        endpoint=ENDPOINT,
    )
    assert type(exc) is ServerError
    assert "Internal server error." in exc.describe()


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", ServerError),
        (503, b"", ServerError),
        (504, b"upstream request timeout", ServerError),
        (500, b"{not json", ServerError),
        (599, b"[]", ServerError),
        (403, b'{"message":"Forbidden"}', AccessDenied),
        (401, b"Unauthorized", AccessDenied),
        (404, b"<html>Not Found</html>", UnexpectedResponse),
        (400, b"plain text", UnexpectedResponse),
        (400, b'"just a string"', UnexpectedResponse),
        (400, b'{"code": 123, "message": "other"}', UnexpectedResponse),
        (409, b"conflict", UnexpectedResponse),  # 409 only means UploadRejected on the upload PUT
        (302, b"", UnexpectedResponse),
    ],
)
def test_odd_shapes_never_raise_and_map_by_status(status, payload, expected):
    exc = error_from_response(status, payload, endpoint=ENDPOINT, headers={})
    assert type(exc) is expected
    assert exc.http_status == status
    assert str(exc)  # formatting works for every shape


def test_html_bodies_are_reduced_to_their_title():
    exc = error_from_response(502, b"<html><title>502 Bad Gateway</title><p>x</p></html>", endpoint=ENDPOINT)
    assert exc.describe() == "HTTP 502: the server or a gateway in front of it failed (502 Bad Gateway)"
    empty = error_from_response(503, None, endpoint=ENDPOINT)
    assert "empty body" in empty.describe()


def test_gateway_json_message_is_kept():
    exc = error_from_response(403, b'{"message":"Forbidden"}', endpoint=ENDPOINT)
    assert exc.api_message == "Forbidden"
    assert "Forbidden" in exc.describe()


def test_rate_limited_carries_retry_after():
    exc = error_from_response(
        429, b'{"message":"Too Many Requests"}', endpoint=ENDPOINT, headers={"Retry-After": "7"}
    )
    assert isinstance(exc, RateLimited) and isinstance(exc, TransientError)
    assert exc.retry_after == 7.0
    assert "retry after 7 s" in exc.describe()
    no_header = error_from_response(429, b"", endpoint=ENDPOINT)
    assert isinstance(no_header, RateLimited) and no_header.retry_after is None


def test_parse_retry_after():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    for bad in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(bad) is None


S3_EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><X-Amz-Expires>900</X-Amz-Expires></Error>"
)


def test_presigned_403_is_url_expired_with_the_s3_code():
    exc = error_from_response(403, S3_EXPIRED, endpoint="GET http://s3/x", presigned=True)
    assert type(exc) is UrlExpired and isinstance(exc, PermanentError)
    assert (exc.error, exc.api_message) == ("AccessDenied", "Request has expired")
    assert "AccessDenied: Request has expired" in exc.describe()


def test_upload_409_is_upload_rejected_and_other_presigned_errors_are_typed():
    conflict = b"<Error><Code>OperationAborted</Code><Message>already uploaded</Message></Error>"
    assert (
        type(error_from_response(409, conflict, endpoint="PUT x", presigned=True, upload=True))
        is UploadRejected
    )
    assert type(error_from_response(503, b"", endpoint="PUT x", presigned=True, upload=True)) is ServerError
    assert type(error_from_response(429, b"", endpoint="PUT x", presigned=True, upload=True)) is RateLimited
    incomplete = b"<Error><Code>IncompleteBody</Code><Message>short</Message></Error>"
    assert type(error_from_response(400, incomplete, endpoint="PUT x", presigned=True)) is UnexpectedResponse


def test_presigned_error_details_never_repeat_signatures():
    mismatch = (
        b"<Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message>"
        b"<SignatureProvided>deadbeefsig</SignatureProvided>"
        b"<CanonicalRequest>PUT /x X-Amz-Signature=deadbeefsig</CanonicalRequest></Error>"
    )
    exc = error_from_response(403, mismatch, endpoint="PUT x", presigned=True)
    assert "deadbeefsig" not in str(exc)
    plain = error_from_response(
        400, b"see https://h/x?X-Amz-Signature=deadbeefsig", endpoint="PUT x", presigned=True
    )
    assert "deadbeefsig" not in str(plain)


def test_api_key_and_query_strings_are_masked_in_server_text():
    payload = body(4001000204, "PREDA_EXTERNAL_BAD_REQUEST", "key my-secret-key rejected")
    exc = error_from_response(400, payload, endpoint=ENDPOINT, secrets=["my-secret-key"])
    assert "my-secret-key" not in str(exc) and "***" in str(exc)
    html = (
        b"<html><body>See https://x/y?X-Amz-Signature=abc123&filename=a.csv, key my-secret-key</body></html>"
    )
    exc = error_from_response(502, html, endpoint=ENDPOINT, secrets=["my-secret-key"])
    assert "abc123" not in str(exc) and "my-secret-key" not in str(exc)
    assert "filename=a.csv" in str(exc)


def test_long_bodies_are_truncated():
    exc = error_from_response(502, b"x" * 100_000, endpoint=ENDPOINT)
    assert len(exc.describe()) < 300


def test_errors_pickle_with_their_fields():
    exc = error_from_response(429, b"", endpoint=ENDPOINT, headers={"Retry-After": "5"})
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes
    assert type(copy) is RateLimited
    assert (copy.retry_after, copy.http_status, copy.endpoint, str(copy)) == (5.0, 429, ENDPOINT, str(exc))
    row = pickle.loads(pickle.dumps(ApiKeyInvalid(code=4001000204, api_message="invalid_api_key.")))  # noqa: S301
    assert row.api_message == "invalid_api_key."


def test_architecture_names_exist_with_the_right_base():
    transient = {
        "ConfigurationFileNotFound",
        "ServerError",
        "RateLimited",
        "ConnectionFailed",
        "UploadAnswerLost",
    }
    permanent = {
        "ApiKeyInvalid",
        "CredentialInactive",
        "CredentialNotFound",
        "UserDeleted",
        "ModelDeleted",
        "JobDeleted",
        "RetrainJobNotFound",
        "ClassifierNotFound",
        "RetrainJobNotFinished",
        "BadRequest",
        "AccessDenied",
        "UploadRejected",
        "UrlExpired",
        "UnexpectedResponse",
    }
    for name in transient:
        assert issubclass(getattr(errors, name), TransientError), name
    for name in permanent:
        assert issubclass(getattr(errors, name), PermanentError), name
    assert issubclass(ConfigurationFileNotFound, PredictionOneError)
