"""``EmulatorAdmin``: an HTTP client for the emulator's ``/_emulator/`` admin routes (no API key needed)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import requests


class EmulatorAdminError(RuntimeError):
    """An admin call was refused; ``status`` is the HTTP status, the text is the emulator's reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"emulator admin: HTTP {status}: {message}")
        self.status = status
        self.message = message


def _segment(value: str) -> str:
    return quote(value, safe="")


class EmulatorAdmin:
    """Drives a running emulator at ``base_url``; safe to use from several threads."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # loopback: never through a proxy from the environment
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()
        self._local = threading.local()

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> requests.Response:
        response = self._session().request(
            method,
            f"{self.base_url}/_emulator{path}",
            json=body if body is not None or method in ("POST", "PUT") else None,
            params=params,
            timeout=timeout or self.timeout,
        )
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text[:200]
            raise EmulatorAdminError(response.status_code, message)
        return response

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self._call(method, path, body, **kwargs).json()

    # -- models and credentials ------------------------------------------------------------------------------

    def health(self, timeout: float | None = None) -> bool:
        """True once the emulator answers HTTP (raises requests' errors if it does not)."""
        return bool(self._json("GET", "/health", timeout=timeout)["ok"])

    def models(self) -> list[dict[str, Any]]:
        """Every model with its state and ``base_job_id`` (never its key)."""
        return self._json("GET", "/models")

    def add_model(self, name: str, api_key: str) -> dict[str, Any]:
        return self._json("POST", "/models", {"name": name, "api_key": api_key})

    def deactivate_credential(self, api_key: str) -> None:
        """The key now gets ``Inactive_credential.``."""
        self._call("POST", "/credentials/deactivate", {"api_key": api_key})

    def delete_credential(self, api_key: str) -> None:
        """The key's record is gone: ``Not_found_credential.``."""
        self._call("POST", "/credentials/delete", {"api_key": api_key})

    def delete_user(self, model: str) -> None:
        self._call("POST", f"/models/{_segment(model)}/delete_user", {})

    def delete_model(self, model: str) -> None:
        self._call("POST", f"/models/{_segment(model)}/delete", {})

    def delete_configuration(self, model: str) -> None:
        self._call("POST", f"/models/{_segment(model)}/delete_configuration", {})

    def delete_job(self, job_id: str) -> None:
        """Delete a retrain job, or a model's base job (``models()[i]["base_job_id"]``)."""
        self._call("POST", f"/jobs/{_segment(job_id)}/delete", {})

    # -- behaviour -------------------------------------------------------------------------------------------

    def settings(self, model: str | None = None) -> dict[str, Any]:
        return self._json("GET", "/settings", params={"model": model} if model else None)

    def set_settings(
        self,
        job_seconds: float | None = None,
        outcome: str | None = None,
        failure_message: str | None = None,
        upload_url_ttl: int | None = None,
        download_url_ttl: int | None = None,
        validate: bool | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Change the global settings (or one model's, with ``model``); None leaves a setting as it is.

        ``outcome``: ``finished``, ``failed`` or ``never``. Jobs keep the settings in force at their upload.
        """
        body = {
            "job_seconds": job_seconds,
            "outcome": outcome,
            "failure_message": failure_message,
            "upload_url_ttl": upload_url_ttl,
            "download_url_ttl": download_url_ttl,
            "validate": validate,
            "model": model,
        }
        return self._json("PUT", "/settings", {k: v for k, v in body.items() if v is not None})

    def set_faults(
        self,
        rate: float,
        seed: int = 0,
        kinds: Iterable[str] | None = None,
        endpoints: Iterable[str] | None = None,
        slow_seconds: float | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"rate": rate, "seed": seed}
        if kinds is not None:
            body["kinds"] = list(kinds)
        if endpoints is not None:
            body["endpoints"] = list(endpoints)
        if slow_seconds is not None:
            body["slow_seconds"] = slow_seconds
        return self._json("PUT", "/faults", body)

    def faults(self) -> dict[str, Any] | None:
        return self._json("GET", "/faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def fault_counts(self) -> dict[str, int]:
        return self._json("GET", "/faults/counts")

    def advance_clock(self, seconds: float) -> float:
        """Move the emulator's clock forward (URLs expire, jobs finish); returns the total offset."""
        return self._json("POST", "/clock", {"advance_seconds": seconds})["offset_seconds"]

    def reset(self) -> None:
        self._call("POST", "/reset", {})

    # -- what happened ---------------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        return self._json("GET", "/jobs")

    def job(self, job_id: str) -> dict[str, Any]:
        for job in self.jobs():
            if job["id"] == job_id:
                return job
        raise EmulatorAdminError(404, f"unknown retrain job {job_id!r}")

    def wait_job(
        self, job_id: str, status: str | Iterable[str] = "job_finished", timeout: float = 30.0
    ) -> dict:
        """Block until the job reaches ``status`` (one or several); raises EmulatorAdminError on timeout."""
        return self._wait(f"/jobs/{_segment(job_id)}/wait", status, timeout, "retrain job", job_id)

    def uploads(self) -> list[dict[str, Any]]:
        return self._json("GET", "/uploads")

    def switches(self) -> list[dict[str, Any]]:
        return self._json("GET", "/switches")

    def requests_log(self) -> list[dict[str, Any]]:
        """API and storage requests: method, path (no query string), endpoint, status, fault."""
        return self._json("GET", "/requests")

    def result_bytes(self, job_id: str) -> bytes:
        """The exact results file of a job or training process."""
        return self._call("GET", f"/jobs/{_segment(job_id)}/result").content

    def set_result_file(self, job_id: str, path: str) -> dict[str, Any]:
        """Serve the local file at absolute ``path`` as the job's (or training's) results file."""
        return self._json("PUT", f"/jobs/{_segment(job_id)}/result", {"path": str(path)})

    # -- training processes (endpoint 4) ---------------------------------------------------------------------

    def create_training(self, model: str, seconds: float = 0.0, outcome: str = "finished") -> str:
        """A training process of ``model`` that runs ``seconds`` then ends as ``outcome``; its id."""
        body = {"model": model, "seconds": seconds, "outcome": outcome}
        return self._json("POST", "/trainings", body)["external_process_id"]

    def trainings(self) -> list[dict[str, Any]]:
        return self._json("GET", "/trainings")

    def wait_training(
        self, process_id: str, status: str | Iterable[str] = "finished", timeout: float = 30.0
    ) -> dict[str, Any]:
        return self._wait(f"/trainings/{_segment(process_id)}/wait", status, timeout, "training", process_id)

    def _wait(self, path: str, status: str | Iterable[str], timeout: float, what: str, item: str) -> dict:
        statuses = [status] if isinstance(status, str) else list(status)
        params = {"status": ",".join(statuses), "timeout": str(timeout)}
        view = self._json("GET", path, params=params, timeout=timeout + self.timeout)
        if not view.pop("reached"):
            raise EmulatorAdminError(
                408,
                f"{what} {item} is still {view['status']!r} after {timeout:g} s, not {' or '.join(statuses)}",
            )
        return view
