"""The presigned storage URLs: signatures, expiry, one upload per job, framing, streaming, ranges."""

from __future__ import annotations

import hashlib
import io
import socket
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from p1_retrain.emulator import EmulatorAdminError
from p1_retrain.emulator.receive import BodyEnded, StoreFailed, receive_to_file
from tests.integration.conftest import make_table


def with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def assert_s3_error(answer: requests.Response, status: int, code: str, message: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/xml"
    assert f"<Code>{code}</Code>" in answer.text
    if message:
        assert f"<Message>{message}</Message>" in answer.text


def test_upload_url_is_s3_like(api):
    _, upload_url = api.new_job()
    parts = urlsplit(upload_url)
    query = dict(parse_qsl(parts.query))
    assert parts.path.startswith("/_storage/upload/")
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "900"
    assert len(query["X-Amz-Date"]) == 16 and query["X-Amz-Date"].endswith("Z")
    assert len(query["X-Amz-Signature"]) == 64


def test_upload_records_size_and_sha256(emulator, api):
    data = make_table(rows=500, columns=6)
    job_id, upload_url = api.new_job("sales.csv")
    answer = api.put(upload_url, data)
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["x-amz-checksum-sha256-hex"] == hashlib.sha256(data).hexdigest()
    job = emulator.admin.job(job_id)
    assert job["status"] == "job_running"
    assert (job["upload_size"], job["upload_sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    (upload,) = emulator.admin.uploads()
    assert upload["job_id"] == job_id and upload["filename"] == "sales.csv" and upload["size"] == len(data)


def test_upload_streams_a_multi_chunk_body_exactly(emulator, api):
    data = make_table(columns=4) + b"5,6,7,8\n" * 1_000_000  # 8 MiB: many buffers through the writer thread
    job_id, upload_url = api.new_job()
    assert api.put(upload_url, data).status_code == 200
    assert emulator.admin.job(job_id)["upload_sha256"] == hashlib.sha256(data).hexdigest()


def test_bad_signature_is_refused_and_changes_nothing(emulator, api):
    job_id, upload_url = api.new_job()
    signature = dict(parse_qsl(urlsplit(upload_url).query))["X-Amz-Signature"]
    forged = with_query(upload_url, **{"X-Amz-Signature": signature[::-1]})
    assert_s3_error(api.put(forged, make_table()), 403, "SignatureDoesNotMatch")
    assert emulator.admin.job(job_id)["status"] == "job_created"
    assert api.put(upload_url, make_table()).status_code == 200  # the connection and the URL still work


def test_a_signature_is_bound_to_its_job_and_lifetime(api):
    first_id, first_url = api.new_job()
    second_id, _ = api.new_job()
    assert_s3_error(api.put(first_url.replace(first_id, second_id), b"x"), 403, "SignatureDoesNotMatch")
    assert_s3_error(
        api.put(with_query(first_url, **{"X-Amz-Expires": "999999"}), b"x"), 403, "SignatureDoesNotMatch"
    )


def test_missing_signature_parameter(api):
    _, upload_url = api.new_job()
    answer = api.put(with_query(upload_url, **{"X-Amz-Signature": None}), b"x")
    assert_s3_error(answer, 400, "AuthorizationQueryParametersError")


def test_expired_upload_url(emulator, api):
    job_id, upload_url = api.new_job()
    emulator.admin.advance_clock(901)
    answer = api.put(upload_url, make_table())
    assert_s3_error(answer, 403, "AccessDenied", "Request has expired")
    assert "<X-Amz-Expires>900</X-Amz-Expires>" in answer.text
    assert emulator.admin.job(job_id)["status"] == "job_created"


def test_upload_url_ttl_setting(emulator, api):
    emulator.admin.set_settings(upload_url_ttl=5)
    _, upload_url = api.new_job()
    assert dict(parse_qsl(urlsplit(upload_url).query))["X-Amz-Expires"] == "5"
    emulator.admin.advance_clock(6)
    assert_s3_error(api.put(upload_url, make_table()), 403, "AccessDenied", "Request has expired")


def test_second_upload_is_409_and_keeps_the_first(emulator, api):
    job_id, upload_url = api.new_job()
    first = make_table(seed=1)
    assert api.put(upload_url, first).status_code == 200
    answer = api.put(upload_url, make_table(seed=2))
    assert_s3_error(answer, 409, "OperationAborted")
    assert emulator.admin.job(job_id)["upload_sha256"] == hashlib.sha256(first).hexdigest()
    assert len(emulator.admin.uploads()) == 1


def test_chunked_upload_is_411_and_connection_survives(emulator, api):
    job_id, upload_url = api.new_job()
    answer = api.put(upload_url, iter([b"a,b\n", b"1,2\n"]))  # a generator body goes out chunked
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert_s3_error(answer, 411, "MissingContentLength")
    assert emulator.admin.job(job_id)["uploaded"] is False
    assert api.put(upload_url, make_table()).status_code == 200


def raw_request(base_url: str, request: bytes) -> bytes:
    """Send raw bytes, half-close, and read until the server closes: the server has finished with it."""
    host, port = urlsplit(base_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_missing_content_length_is_411(emulator, api):
    _, upload_url = api.new_job()
    parts = urlsplit(upload_url)
    answer = raw_request(
        emulator.base_url,
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 411 ")
    assert b"<Code>MissingContentLength</Code>" in answer


def test_body_shorter_than_content_length_is_discarded(emulator, api):
    job_id, upload_url = api.new_job()
    parts = urlsplit(upload_url)
    head = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 1000\r\n\r\n"
    answer = raw_request(emulator.base_url, head.encode() + b"only a little")
    assert answer == b""  # the client went away: nothing to answer
    job = emulator.admin.job(job_id)
    assert (job["uploaded"], job["status"]) == (False, "job_created")
    assert emulator.admin.uploads() == []
    assert api.put(upload_url, make_table()).status_code == 200  # the job still takes its one upload


def test_upload_to_deleted_job_is_404(emulator, api):
    job_id, upload_url = api.new_job()
    emulator.admin.delete_job(job_id)
    assert_s3_error(api.put(upload_url, make_table()), 404, "NoSuchKey")


def test_download_url_is_fresh_on_every_status_call(emulator, api, finished_job):
    first = api.status(finished_job).json()["download_url"]
    emulator.admin.advance_clock(2)
    second = api.status(finished_job).json()["download_url"]
    assert first != second
    assert api.get(first).content == api.get(second).content == emulator.admin.result_bytes(finished_job)


def test_download_url_expires_and_a_fresh_one_works(emulator, api, finished_job):
    download_url = api.status(finished_job).json()["download_url"]
    assert dict(parse_qsl(urlsplit(download_url).query))["X-Amz-Expires"] == "600"
    emulator.admin.advance_clock(601)
    assert_s3_error(api.get(download_url), 403, "AccessDenied", "Request has expired")
    fresh = api.status(finished_job).json()["download_url"]
    answer = api.get(fresh)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/zip"


def test_download_url_ttl_per_model(emulator, api, finished_job):
    emulator.admin.set_settings(download_url_ttl=30, model="demo")
    download_url = api.status(finished_job).json()["download_url"]
    assert dict(parse_qsl(urlsplit(download_url).query))["X-Amz-Expires"] == "30"
    assert emulator.admin.settings()["download_url_ttl"] == 600


def test_forged_download_url(api, finished_job):
    download_url = api.status(finished_job).json()["download_url"]
    assert_s3_error(
        api.get(download_url.replace("retrain_result.zip", "other.zip")), 403, "SignatureDoesNotMatch"
    )


def test_download_of_deleted_job_is_404(emulator, api, finished_job):
    download_url = api.status(finished_job).json()["download_url"]
    emulator.admin.delete_job(finished_job)
    assert_s3_error(api.get(download_url), 404, "NoSuchKey")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-9", 0, 10), ("bytes=10-", 10, None), ("bytes=-7", -7, None), ("bytes=5-99999999", 5, None)],
)
def test_download_ranges(emulator, api, finished_job, header, start, end):
    whole = emulator.admin.result_bytes(finished_job)
    answer = api.get(api.status(finished_job).json()["download_url"], headers={"Range": header})
    assert answer.status_code == 206
    assert answer.content == whole[start:end]
    first = start % len(whole)
    assert answer.headers["Content-Range"] == f"bytes {first}-{first + len(answer.content) - 1}/{len(whole)}"


def test_unsatisfiable_range_is_416(emulator, api, finished_job):
    size = len(emulator.admin.result_bytes(finished_job))
    answer = api.get(api.status(finished_job).json()["download_url"], headers={"Range": f"bytes={size}-"})
    assert_s3_error(answer, 416, "InvalidRange")


def test_set_result_file_is_served_byte_for_byte(emulator, api, finished_job, tmp_path):
    payload = bytes(range(256)) * 9000 + b"tail"  # a couple of MiB, not a zip
    path = tmp_path / "custom results.bin"
    path.write_bytes(payload)
    assert emulator.admin.set_result_file(finished_job, str(path)) == {
        "id": finished_job,
        "name": "custom results.bin",
        "size": len(payload),
    }
    download_url = api.status(finished_job).json()["download_url"]
    assert urlsplit(download_url).path.endswith("/custom%20results.bin")
    answer = api.get(download_url)
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert answer.content == payload == emulator.admin.result_bytes(finished_job)


def test_set_result_file_rejects_bad_paths(emulator, finished_job, tmp_path):
    real = tmp_path / "real.zip"
    real.write_bytes(b"PK")
    with pytest.raises(EmulatorAdminError, match="does not exist"):
        emulator.admin.set_result_file(finished_job, str(tmp_path / "missing.zip"))
    with pytest.raises(EmulatorAdminError, match="absolute"):
        emulator.admin.set_result_file(finished_job, "relative.zip")
    with pytest.raises(EmulatorAdminError, match="unknown retrain job"):
        emulator.admin.set_result_file("nope", str(real))


def test_results_are_not_served_before_the_job_finished(emulator, api):
    emulator.admin.set_settings(job_seconds=3600)
    job_id = api.uploaded_job()
    status = api.status(job_id).json()
    assert status["status"] == "job_running" and "download_url" not in status and "model_id" not in status
    state = emulator.state  # sign the URL the status route would not give out yet
    path = f"/_storage/results/{job_id}/retrain_result.zip"
    url = state.signer.sign(emulator.base_url, "GET", path, state.now(), 60)
    assert_s3_error(api.get(url), 404, "NoSuchKey")


def test_receive_to_file_reports_short_bodies_and_disk_failures(tmp_path):
    body = bytes(range(256)) * 20_000  # ~5 MiB: several buffers
    target = tmp_path / "out"
    assert receive_to_file(io.BytesIO(body).readinto, len(body), target) == hashlib.sha256(body).hexdigest()
    assert target.read_bytes() == body
    with pytest.raises(BodyEnded):
        receive_to_file(io.BytesIO(body[:1000]).readinto, len(body), target)
    if Path("/dev/full").exists():  # every write fails with ENOSPC
        with pytest.raises(StoreFailed):
            receive_to_file(io.BytesIO(body).readinto, len(body), Path("/dev/full"))
