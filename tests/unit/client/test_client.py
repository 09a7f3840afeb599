"""PredictionOneClient without a network (a fake transport): URLs, answer parsing, headers, transfers."""

from __future__ import annotations

import io
import json

import pytest
import requests
from prediction_one import (
    DOCUMENTED_BASE_URLS,
    ApiKeyInvalid,
    ClientSettings,
    JobState,
    PredictionOneClient,
    RetrainJobNotFinished,
    UnexpectedResponse,
    UploadRejected,
    UrlExpired,
)
from requests.adapters import BaseAdapter
from urllib3 import HTTPResponse

KEY = "unit-secret-key"


class FakeTransport(BaseAdapter):
    """Answers from a queue and records what was sent (method, url, headers, body bytes)."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)
        self.sent = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        body = request.body
        if hasattr(body, "read"):
            chunks = []
            while chunk := body.read(65536):
                chunks.append(chunk)
            body = b"".join(chunks)
        self.sent.append(
            {"method": request.method, "url": request.url, "headers": dict(request.headers), "body": body}
        )
        status, payload, headers = self.answers.pop(0)
        if isinstance(payload, dict | list):
            payload = json.dumps(payload).encode()
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.raw = HTTPResponse(
            body=io.BytesIO(payload), status=status, headers=headers, preload_content=False
        )
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


def make_client(answers, base_url=DOCUMENTED_BASE_URLS[0], transfers=(), key=KEY):
    api = FakeTransport(answers)
    transfer = FakeTransport(transfers)
    session = requests.Session()
    transfer_session = requests.Session()
    client = PredictionOneClient(key, ClientSettings(base_url=base_url), session, transfer_session)
    session.mount(base_url + "/", api)  # replaces the retrying adapter: no network in unit tests
    transfer_session.mount("https://", transfer)
    transfer_session.mount("http://", transfer)
    return client, api, transfer


@pytest.mark.parametrize("base_url", DOCUMENTED_BASE_URLS)
def test_get_upload_url_builds_the_documented_request_on_either_host(base_url):
    client, api, _ = make_client(
        [(200, {"retrain_job_id": "job-1", "upload_url": "https://s3.example/u?X-Amz-Signature=s"}, {})],
        base_url=base_url,
    )
    target = client.get_upload_url("学習 data+1.csv")
    sent = api.sent[0]
    assert sent["method"] == "GET"
    assert sent["url"] == (
        f"{base_url}/v1/external/retrain_jobs/upload_url?filename=%E5%AD%A6%E7%BF%92%20data%2B1.csv"
    )
    assert sent["headers"]["x-api-key"] == KEY
    assert target.retrain_job_id == "job-1"
    assert target.upload_url.endswith("X-Amz-Signature=s")
    assert "X-Amz-Signature" not in repr(target)


def test_status_update_and_training_paths():
    client, api, _ = make_client(
        [
            (200, {"status": "job_running", "metadata": {"retrain_job_id": "a/b"}}, {}),
            (200, {"metadata": {"retrain_job_id": "a/b"}}, {}),
            (200, {"status": "running", "created_datetime": "c", "updated_datetime": "u"}, {}),
        ]
    )
    client.get_retrain_job("a/b")
    client.update_model("a/b")
    client.get_training_result("p 1")
    base = DOCUMENTED_BASE_URLS[0]
    assert [(s["method"], s["url"]) for s in api.sent] == [
        ("GET", f"{base}/v1/external/retrain_jobs/a%2Fb"),
        ("PUT", f"{base}/v1/external/retrain_jobs/a%2Fb/update_model"),
        ("GET", f"{base}/v1/external/models/results?external_process_id=p%201"),
    ]
    assert all(s["headers"]["x-api-key"] == KEY for s in api.sent)


def test_retrain_job_answer_is_parsed_and_classified():
    client, _, _ = make_client(
        [
            (
                200,
                {
                    "status": "job_finished",
                    "model_id": "42",
                    "message": "ok",
                    "download_url": "https://s3.example/r.zip?X-Amz-Signature=s",
                    "metadata": {"retrain_job_id": "j"},
                },
                {},
            ),
            (200, {"status": "JOB_FAILED", "message": "too few rows", "model_id": True}, {}),
            (200, {"status": "something_new"}, {}),
        ]
    )
    done = client.get_retrain_job("j")
    assert (done.state, done.model_id, done.message) == (JobState.FINISHED, 42, "ok")
    assert done.download_url and "X-Amz-Signature=s" not in repr(done)
    failed = client.get_retrain_job("j")
    assert (failed.state, failed.model_id, failed.message, failed.download_url) == (
        JobState.FAILED,
        None,
        "too few rows",
        None,
    )
    assert client.get_retrain_job("j").state is JobState.RUNNING


def test_training_result_is_parsed_and_classified():
    client, _, _ = make_client(
        [
            (
                200,
                {
                    "status": "finished",
                    "created_datetime": "c",
                    "updated_datetime": "u",
                    "result_url": "https://r/x",
                },
                {},
            ),
            (200, {"status": "running"}, {}),
        ]
    )
    done = client.get_training_result("p")
    assert (done.state, done.created_datetime, done.updated_datetime, done.result_url) == (
        JobState.FINISHED,
        "c",
        "u",
        "https://r/x",
    )
    running = client.get_training_result("p")
    assert (running.state, running.created_datetime, running.result_url) == (JobState.RUNNING, None, None)


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"<html>portal</html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"upload_url": "https://x/u"}', "'retrain_job_id' of the answer is missing"),
        (b'{"retrain_job_id": 5, "upload_url": "https://x/u"}', "'retrain_job_id' of the answer is not"),
        (b'{"retrain_job_id": "j", "upload_url": "/relative"}', r"not an absolute http\(s\) URL"),
        (b"", "'retrain_job_id' of the answer is missing"),
    ],
)
def test_odd_success_answers_are_unexpected_responses(payload, detail):
    client, _, _ = make_client([(200, payload, {})])
    with pytest.raises(UnexpectedResponse, match=detail):
        client.get_upload_url("a.csv")


def test_documented_errors_are_raised_typed_and_without_the_key():
    bad = {"code": 4001000204, "error": "PREDA_EXTERNAL_BAD_REQUEST", "message": "invalid_api_key."}
    client, _, _ = make_client(
        [(400, bad, {}), (400, {**bad, "message": "Retrain job is not finished."}, {})]
    )
    with pytest.raises(ApiKeyInvalid) as caught:
        client.get_retrain_job("j")
    assert KEY not in str(caught.value)
    assert caught.value.endpoint == "GET /v1/external/retrain_jobs/j"
    with pytest.raises(RetrainJobNotFinished):
        client.update_model("j")


def test_upload_streams_with_content_length_and_no_api_key():
    client, _, transfer = make_client([], transfers=[(200, b"", {})])
    client.upload("https://s3.example/u?X-Amz-Signature=s", io.BytesIO(b"a,b\n1,2\n"), 8)
    sent = transfer.sent[0]
    assert sent["method"] == "PUT"
    assert sent["headers"]["Content-Length"] == "8"
    assert "Transfer-Encoding" not in sent["headers"]
    assert "x-api-key" not in {k.lower() for k in sent["headers"]}
    assert sent["body"] == b"a,b\n1,2\n"


def test_upload_of_bytes_and_of_nothing():
    client, _, transfer = make_client([], transfers=[(200, b"", {}), (200, b"", {})])
    client.upload("https://s3.example/u", b"abc", 3)
    client.upload("https://s3.example/u", io.BytesIO(b""), 0)
    assert [s["headers"].get("Content-Length") for s in transfer.sent] == ["3", "0"]
    with pytest.raises(ValueError, match="length is 4 but the body holds 3 bytes"):
        client.upload("https://s3.example/u", b"abc", 4)
    with pytest.raises(ValueError, match="absolute"):
        client.upload("not-a-url", b"abc", 3)


def test_upload_errors_are_typed():
    conflict = b"<Error><Code>OperationAborted</Code><Message>already uploaded</Message></Error>"
    expired = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    client, _, _ = make_client([], transfers=[(409, conflict, {}), (403, expired, {})])
    with pytest.raises(UploadRejected):
        client.upload("https://s3.example/u?X-Amz-Signature=s", b"x", 1)
    with pytest.raises(UrlExpired) as caught:
        client.upload("https://s3.example/u?X-Amz-Signature=s", b"x", 1)
    assert "X-Amz-Signature" not in str(caught.value)
    assert caught.value.endpoint == "PUT https://s3.example/u"


def test_download_to_a_callable_or_a_file_object():
    data = bytes(range(256)) * 100
    client, _, transfer = make_client(
        [], transfers=[(200, data, {"Content-Length": str(len(data))}), (200, data, {})]
    )
    parts = []
    assert client.download("https://s3.example/r.zip?sig=1", parts.append, chunk_size=1000) == len(data)
    assert b"".join(parts) == data and max(len(p) for p in parts) <= 1000
    sink = io.BytesIO()
    assert client.download("https://s3.example/r.zip", sink) == len(data)
    assert sink.getvalue() == data
    assert transfer.sent[0]["headers"]["Accept-Encoding"] == "identity"
    assert "x-api-key" not in {k.lower() for k in transfer.sent[0]["headers"]}


def test_download_keeps_encoded_bytes_as_they_are():
    import gzip

    packed = gzip.compress(b"hello")
    client, _, _ = make_client([], transfers=[(200, packed, {"Content-Encoding": "gzip"})])
    sink = io.BytesIO()
    client.download("https://s3.example/r.gz", sink)
    assert sink.getvalue() == packed


def test_download_403_is_url_expired_and_writer_errors_pass_through():
    expired = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    client, _, _ = make_client([], transfers=[(403, expired, {}), (200, b"data", {})])
    with pytest.raises(UrlExpired):
        client.download("https://s3.example/r.zip?X-Amz-Signature=s", io.BytesIO())

    def broken(_chunk):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        client.download("https://s3.example/r.zip", broken)


def test_input_validation():
    with pytest.raises(ValueError, match="api_key"):
        PredictionOneClient("")
    with pytest.raises(ValueError, match="line break") as caught:
        PredictionOneClient("abc\ndef")
    assert "abc" not in str(caught.value)
    client, _, _ = make_client([])
    for call, arg, name in [
        (client.get_upload_url, "", "filename"),
        (client.get_upload_url, "a\nb.csv", "filename"),
        (client.get_upload_url, "\ud800.csv", "filename"),
        (client.get_retrain_job, "  ", "retrain_job_id"),
        (client.update_model, None, "retrain_job_id"),
        (client.get_training_result, "", "external_process_id"),
    ]:
        with pytest.raises(ValueError, match=name):
            call(arg)
    with pytest.raises(ValueError, match="chunk_size"):
        client.download("https://x/y", io.BytesIO(), chunk_size=0)
    with pytest.raises(TypeError, match="writer"):
        client.download("https://x/y", object())  # type: ignore[arg-type]


def test_a_key_with_a_trailing_newline_is_trimmed_and_sent_clean():
    client, api, _ = make_client([(200, {"status": "job_running"}, {})], key=f"  {KEY}\n")
    client.get_retrain_job("j")
    assert api.sent[0]["headers"]["x-api-key"] == KEY


def test_an_unbuildable_request_is_a_value_error_without_the_url():
    client, _, _ = make_client([])
    with pytest.raises(ValueError, match="invalid request") as caught:
        client.upload("http://bad host/u?X-Amz-Signature=s", b"x", 1)
    assert "X-Amz-Signature" not in str(caught.value)


def test_repr_hides_the_key():
    client = PredictionOneClient(KEY)
    assert KEY not in repr(client)
    assert "***" in repr(client)
    client.close()
