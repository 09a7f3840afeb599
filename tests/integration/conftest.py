"""What the emulator's integration tests share: a plain client of the documented routes, small data files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.testdata import table
from tests.testdata import zip_of as make_zip

__all__ = ["make_table", "make_zip"]

API_KEY = "demo-key"
UPLOAD_URL_PATH = "/v1/external/retrain_jobs/upload_url"
OWN_KEY = "<the client's own key>"  # marker: send ``Api.api_key``; None sends no header at all


def make_table(rows: int = 120, columns: int = 3, delimiter: str = ",", seed: int = 0) -> bytes:
    """A header line plus ``rows`` data rows of ``columns`` fields."""
    return table(rows, columns, cell=lambda row, column: seed + row * columns + column, delimiter=delimiter)


def error_body(message: str, code: int = 4001000204) -> dict[str, Any]:
    error = "PREDA_EXTERNAL_BAD_REQUEST" if code == 4001000204 else "PREDA_EXTERNAL_INTERNAL_SERVER_ERROR"
    return {"code": code, "error": error, "message": message}


@dataclass
class Api:
    """The four documented endpoints plus the presigned storage URLs, called as the API examples do."""

    base_url: str
    api_key: str | None = API_KEY
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False  # never send loopback traffic through a proxy from the environment

    def _headers(self, api_key: str | None) -> dict[str, str]:
        key = self.api_key if api_key is OWN_KEY else api_key
        return {} if key is None else {"x-api-key": key}

    def upload_url(
        self, filename: str | None = "data.csv", api_key: str | None = OWN_KEY
    ) -> requests.Response:
        params = {} if filename is None else {"filename": filename}
        return self.session.get(
            f"{self.base_url}{UPLOAD_URL_PATH}", params=params, headers=self._headers(api_key), timeout=30
        )

    def status(self, job_id: str, api_key: str | None = OWN_KEY) -> requests.Response:
        url = f"{self.base_url}/v1/external/retrain_jobs/{job_id}"
        return self.session.get(url, headers=self._headers(api_key), timeout=30)

    def switch(self, job_id: str, api_key: str | None = OWN_KEY) -> requests.Response:
        url = f"{self.base_url}/v1/external/retrain_jobs/{job_id}/update_model"
        return self.session.put(url, headers=self._headers(api_key), timeout=30)

    def training(self, process_id: str | None, api_key: str | None = OWN_KEY) -> requests.Response:
        params = {} if process_id is None else {"external_process_id": process_id}
        url = f"{self.base_url}/v1/external/models/results"
        return self.session.get(url, params=params, headers=self._headers(api_key), timeout=30)

    def new_job(self, filename: str = "data.csv", api_key: str | None = OWN_KEY) -> tuple[str, str]:
        answer = self.upload_url(filename, api_key)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body["retrain_job_id"], body["upload_url"]

    def put(self, upload_url: str, data: Any, **kwargs: Any) -> requests.Response:
        return self.session.put(upload_url, data=data, timeout=30, **kwargs)

    def uploaded_job(
        self, data: bytes | None = None, filename: str = "data.csv", api_key: str | None = OWN_KEY
    ) -> str:
        job_id, upload_url = self.new_job(filename, api_key)
        answer = self.put(upload_url, make_table() if data is None else data)
        assert answer.status_code == 200, answer.text
        return job_id

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.session.get(url, timeout=30, **kwargs)


@pytest.fixture
def api(emulator) -> Iterator[Api]:
    client = Api(emulator.base_url)
    yield client
    client.session.close()


def finish(emulator, job_id: str, status: str | tuple[str, ...] = "job_finished") -> dict[str, Any]:
    """Move the emulator's clock past the job's end and wait for its input check: no real waiting."""
    emulator.admin.advance_clock(emulator.admin.settings()["job_seconds"] + 1)
    return emulator.admin.wait_job(job_id, status, timeout=30)


@pytest.fixture
def finished_job(emulator, api: Api) -> str:
    """A retrain job of model ``demo`` that reached ``job_finished``."""
    job_id = api.uploaded_job()
    finish(emulator, job_id)
    return job_id


@pytest.fixture
def curl_env() -> dict[str, str]:
    """The environment for the real ``curl`` binary, without proxy settings."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    """Loopback traffic must not go through a proxy from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
