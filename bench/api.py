"""The documented Prediction One routes, called plainly: set-up and URLs for the references, not measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from bench.procs import BenchError


@dataclass
class PublicApi:
    base_url: str
    api_key: str
    timeout: float = 30.0

    def _get(self, path: str, **params: str) -> dict[str, Any]:
        answer = requests.get(
            f"{self.base_url}{path}", params=params, headers={"x-api-key": self.api_key}, timeout=self.timeout
        )
        if not answer.ok:
            raise BenchError(f"GET {path}: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def new_job(self, filename: str) -> tuple[str, str]:
        """Endpoint 1: a new retrain job; returns ``(retrain_job_id, upload_url)``."""
        body = self._get("/v1/external/retrain_jobs/upload_url", filename=filename)
        return body["retrain_job_id"], body["upload_url"]

    def status(self, job_id: str) -> dict[str, Any]:
        """Endpoint 2 (the answer holds a fresh ``download_url`` once the job is finished)."""
        return self._get(f"/v1/external/retrain_jobs/{job_id}")

    def uploaded_job(self, filename: str, body: bytes) -> str:
        """A job with a small upload done (it then runs to its end on its own); returns its id."""
        job_id, upload_url = self.new_job(filename)
        answer = requests.put(upload_url, data=body, timeout=self.timeout)
        if not answer.ok:
            raise BenchError(f"upload of {filename}: HTTP {answer.status_code}")
        return job_id
