"""The documented error rows of the Prediction One external API (assumed shape) and S3-style storage errors.

The JSON shape of an error is our assumption (the "error shape" row of the assumptions in
``docs/development.md``); the rows themselves are those the API reference pages document.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

BAD_REQUEST_CODE = 4001000204
BAD_REQUEST = "PREDA_EXTERNAL_BAD_REQUEST"
INTERNAL_CODE = 5001000201
INTERNAL = "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR"


@dataclass(frozen=True)
class ApiError(Exception):
    """One error row: HTTP status is the first three digits of ``code`` (the assumed error shape)."""

    code: int
    error: str
    message: str

    @property
    def status(self) -> int:
        return int(str(self.code)[:3])

    def body(self) -> bytes:
        return json.dumps({"code": self.code, "error": self.error, "message": self.message}).encode()

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.message}"


def _bad(message: str) -> ApiError:
    return ApiError(BAD_REQUEST_CODE, BAD_REQUEST, message)


# Rows the API reference pages document.
INVALID_API_KEY = _bad("invalid_api_key.")
INACTIVE_CREDENTIAL = _bad("Inactive_credential.")
NOT_FOUND_CREDENTIAL = _bad("Not_found_credential.")
USER_DELETED = _bad("This user may be deleted.")
MODEL_DELETED = _bad("This model may be deleted.")
JOB_DELETED = _bad("This job may be deleted.")
RETRAIN_JOB_NOT_FOUND = _bad("Not found retrain job.")
CLASSIFIER_NOT_FOUND = _bad("Not found classifier.")
RETRAIN_JOB_NOT_FINISHED = _bad("Retrain job is not finished.")
CONFIGURATION_NOT_FOUND = ApiError(INTERNAL_CODE, INTERNAL, "Not found configuration_file.")

# Rows the documentation leaves open: same shape and code, message of our own.
FILENAME_REQUIRED = _bad("filename is required.")
EXTERNAL_PROCESS_NOT_FOUND = _bad("Not found external_process_id.")
# The body of an injected 500 fault: the documented internal-error code with a generic message.
INTERNAL_FAULT = ApiError(INTERNAL_CODE, INTERNAL, "Internal server error.")


@dataclass(frozen=True)
class StorageError(Exception):
    """An S3-style XML error of the presigned storage routes."""

    status: int
    code: str
    message: str
    extra: tuple[tuple[str, str], ...] = ()

    def body(self) -> bytes:
        fields = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in self.extra)
        request_id = uuid.uuid4().hex[:16].upper()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"{fields}<RequestId>{request_id}</RequestId></Error>"
        ).encode()

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def signature_mismatch() -> StorageError:
    return StorageError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    )


def request_expired(expires_seconds: int, expired_at: str, server_time: str) -> StorageError:
    return StorageError(
        403,
        "AccessDenied",
        "Request has expired",
        (("X-Amz-Expires", str(expires_seconds)), ("Expires", expired_at), ("ServerTime", server_time)),
    )


def missing_query_auth(missing: str) -> StorageError:
    return StorageError(
        400,
        "AuthorizationQueryParametersError",
        f"Query-string authentication requires the {missing} parameter.",
    )


def missing_content_length() -> StorageError:
    return StorageError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")


def no_such_key(what: str) -> StorageError:
    return StorageError(404, "NoSuchKey", f"The specified key does not exist: {what}.")


def upload_conflict() -> StorageError:
    return StorageError(
        409,
        "OperationAborted",
        "The data of this retrain job was already uploaded; a retrain job accepts one upload.",
    )


def incomplete_body(received: int, expected: int) -> StorageError:
    return StorageError(
        400,
        "IncompleteBody",
        f"You did not provide the number of bytes specified by the Content-Length HTTP header "
        f"({received} of {expected}).",
    )


def range_not_satisfiable(size: int) -> StorageError:
    return StorageError(
        416,
        "InvalidRange",
        "The requested range is not satisfiable",
        (("ActualObjectSize", str(size)),),
    )
