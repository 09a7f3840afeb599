"""API keys and presigned query strings never reach the emulator's logs, request log or admin answers."""

from __future__ import annotations

import logging
import socket
from urllib.parse import parse_qsl, urlsplit

import pytest

from p1_retrain.emulator import EmulatorAdminError
from tests.integration.conftest import finish, make_table

SECRET_KEY = "sk-very-secret-0123456789"


def test_no_key_or_signature_in_logs(emulator, api, caplog):
    caplog.set_level(logging.DEBUG, logger="p1_retrain.emulator")
    emulator.admin.add_model("secret", SECRET_KEY)
    api.api_key = SECRET_KEY
    job_id, upload_url = api.new_job()
    signature = dict(parse_qsl(urlsplit(upload_url).query))["X-Amz-Signature"]
    assert api.put(upload_url, make_table()).status_code == 200
    assert api.put(upload_url, make_table()).status_code == 409
    finish(emulator, job_id)
    download_url = api.status(job_id).json()["download_url"]
    download_signature = dict(parse_qsl(urlsplit(download_url).query))["X-Amz-Signature"]
    assert api.get(download_url).status_code == 200
    emulator.admin.set_faults(1.0, kinds=["reset"], endpoints=["retrain_status"])
    with pytest.raises(Exception):  # noqa: B017 - whichever connection error requests raises
        api.status(job_id)
    emulator.admin.clear_faults()
    with pytest.raises(EmulatorAdminError) as caught:
        emulator.admin.add_model("again", SECRET_KEY)
    # a malformed request line still gets logged by the HTTP layer: its query string must be cut
    host, port = urlsplit(emulator.base_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(f"GET /x?X-Amz-Signature={signature}&key={SECRET_KEY} HTTP/9.9\r\n\r\n".encode())
        raw.shutdown(socket.SHUT_WR)
        while raw.recv(65536):
            pass

    everything = "\n".join(
        [record.getMessage() for record in caplog.records]
        + [caplog.text, str(emulator.admin.requests_log()), str(emulator.admin.jobs()), str(caught.value)]
        + [str(emulator.admin.models()), str(emulator.admin.uploads())]
    )
    assert "code 505" in caplog.text  # the malformed request was logged...
    for secret in (SECRET_KEY, signature, download_signature, "X-Amz-"):
        assert secret not in everything  # ...without what it carried
