"""The emulator's state: models, credentials, retrain jobs, training processes, and what happened to them.

Every public method takes the one lock, so the HTTP threads see consistent state. Time is the wall clock
plus an offset that the admin route ``/_emulator/clock`` can advance (to expire URLs or end jobs at once).
Job progress is computed from time on every read, so nothing ticks in the background.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from p1_retrain.emulator import errors
from p1_retrain.emulator.presign import Signer
from p1_retrain.emulator.results import RETRAIN_RESULT_NAME, TRAINING_RESULT_NAME, build_results_zip
from p1_retrain.emulator.validation import DataLimits, TableStats, ValidationResult

OUTCOMES = ("finished", "failed", "never")
JOB_STATUSES = ("job_created", "job_running", "job_finished", "job_failed")
TRAINING_STATUSES = ("running", "finished", "failed")
DEFAULT_FAILURE_MESSAGE = "Retraining failed."
MODEL_ID_BASE = 100000
REQUEST_LOG_LIMIT = 100_000
UPLOAD_PATH = "/_storage/upload/{id}"
RESULT_PATH = "/_storage/results/{id}/{name}"


class NotFound(KeyError):
    """An admin call named a model, key, job or process that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


class Conflict(ValueError):
    """An admin call would overwrite something that exists."""


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Settings:
    """How jobs behave; the global value, or one model's override. Jobs keep what applied at upload."""

    job_seconds: float = 5.0
    outcome: str = "finished"
    failure_message: str = DEFAULT_FAILURE_MESSAGE
    upload_url_ttl: int = 900
    download_url_ttl: int = 600
    validate: bool = True

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        for name, value in changes.items():
            _check_setting(name, value)
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_seconds": self.job_seconds,
            "outcome": self.outcome,
            "failure_message": self.failure_message,
            "upload_url_ttl": self.upload_url_ttl,
            "download_url_ttl": self.download_url_ttl,
            "validate": self.validate,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_setting(name: str, value: Any) -> None:
    if name == "job_seconds" and not (_is_number(value) and value >= 0):
        raise ValueError(f"job_seconds must be a number >= 0, got {value!r}")
    if name == "outcome" and value not in OUTCOMES:
        raise ValueError(f"outcome must be one of {list(OUTCOMES)}, got {value!r}")
    if name == "failure_message" and not (isinstance(value, str) and value):
        raise ValueError("failure_message must be a non-empty string")
    if name in ("upload_url_ttl", "download_url_ttl") and not (
        isinstance(value, int) and not isinstance(value, bool) and value > 0
    ):
        raise ValueError(f"{name} must be a positive integer (seconds), got {value!r}")
    if name == "validate" and not isinstance(value, bool):
        raise ValueError(f"validate must be true or false, got {value!r}")
    if name not in Settings.__dataclass_fields__:
        raise ValueError(f"unknown setting {name!r}")


@dataclass
class Credential:
    model: str
    active: bool = True
    deleted: bool = False


@dataclass
class Model:
    name: str
    base_job_id: str
    user_deleted: bool = False
    deleted: bool = False
    base_job_deleted: bool = False
    configuration_deleted: bool = False
    published_model_id: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base_job_id": self.base_job_id,
            "user_deleted": self.user_deleted,
            "deleted": self.deleted,
            "base_job_deleted": self.base_job_deleted,
            "configuration_deleted": self.configuration_deleted,
            "published_model_id": self.published_model_id,
            "settings": dict(self.overrides),
        }


@dataclass
class ResultFile:
    path: Path
    name: str


@dataclass
class Job:
    id: str
    seq: int
    model: str
    filename: str
    created: float
    updated: float
    status: str = "job_created"
    uploading: bool = False
    uploaded: bool = False
    upload_size: int | None = None
    upload_sha256: str | None = None
    upload_path: Path | None = None
    finish_at: float | None = None
    outcome: str | None = None
    failure_message: str | None = None
    validation: str | None = None  # pending | passed | failed | skipped
    validated_at: float | None = None
    tables: list[TableStats] = field(default_factory=list)
    message: str | None = None
    model_id: int | None = None
    deleted: bool = False
    switch_count: int = 0
    result: ResultFile | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "filename": self.filename,
            "status": self.status,
            "message": self.message,
            "model_id": self.model_id,
            "uploaded": self.uploaded,
            "upload_size": self.upload_size,
            "upload_sha256": self.upload_sha256,
            "validation": self.validation,
            "tables": [{"name": t.name, "rows": t.rows, "columns": t.columns} for t in self.tables],
            "deleted": self.deleted,
            "switch_count": self.switch_count,
            "result_name": self.result.name if self.result else None,
            "created": iso(self.created),
            "updated": iso(self.updated),
        }


@dataclass
class Training:
    id: str
    model: str
    created: float
    finish_at: float
    outcome: str
    status: str = "running"
    updated: float = 0.0
    result: ResultFile | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_process_id": self.id,
            "model": self.model,
            "status": self.status,
            "outcome": self.outcome,
            "created": iso(self.created),
            "updated": iso(self.updated),
            "result_name": self.result.name if self.result else None,
        }


@dataclass(frozen=True)
class ValidationTask:
    """A check to run after the upload's answer was sent."""

    job_id: str
    path: Path
    filename: str


class EmulatorState:
    """All state behind the HTTP routes; safe to share between threads."""

    def __init__(
        self,
        models: Mapping[str, str],
        settings: Settings,
        storage_dir: Path,
        signer: Signer,
        limits: DataLimits | None = None,
    ) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._initial_models = dict(models)
        self._initial_settings = settings
        self.limits = limits or DataLimits()
        self.signer = signer
        self._uploads_dir = storage_dir / "uploads"
        self._results_dir = storage_dir / "results"
        for folder in (self._uploads_dir, self._results_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._reset_locked()

    # -- setup -----------------------------------------------------------------------------------------------

    def _reset_locked(self) -> None:
        self.settings = self._initial_settings
        self._offset = 0.0
        self._seq = itertools.count(1)
        self._models: dict[str, Model] = {}
        self._credentials: dict[str, Credential] = {}
        self._jobs: dict[str, Job] = {}
        self._trainings: dict[str, Training] = {}
        self._uploads: list[dict[str, Any]] = []
        self._switches: list[dict[str, Any]] = []
        self._requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        for name, key in self._initial_models.items():
            self._add_model_locked(name, key)

    def reset(self) -> None:
        """Back to the state at start: the initial models and settings, no jobs, no logs, clock offset 0."""
        with self._cond:
            for job in self._jobs.values():
                if job.upload_path:
                    job.upload_path.unlink(missing_ok=True)
            for item in (*self._jobs.values(), *self._trainings.values()):
                if item.result and item.result.path.parent.parent == self._results_dir:
                    item.result.path.unlink(missing_ok=True)
            self._reset_locked()
            self._cond.notify_all()

    def now(self) -> float:
        with self._cond:
            return time.time() + self._offset

    def advance_clock(self, seconds: float) -> float:
        if not _is_number(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        with self._cond:
            self._offset += seconds
            self._cond.notify_all()
            return self._offset

    def _add_model_locked(self, name: str, api_key: str) -> Model:
        if not isinstance(name, str) or not name or not isinstance(api_key, str) or not api_key:
            raise ValueError("a model needs a non-empty name and a non-empty api_key")
        if name in self._models:
            raise Conflict(f"model {name!r} exists")
        if api_key in self._credentials:
            raise Conflict(f"that API key already belongs to model {self._credentials[api_key].model!r}")
        model = Model(name, str(uuid.uuid4()))
        self._models[name] = model
        self._credentials[api_key] = Credential(name)
        return model

    def add_model(self, name: str, api_key: str) -> dict[str, Any]:
        with self._cond:
            return self._add_model_locked(name, api_key).as_dict()

    def models(self) -> list[dict[str, Any]]:
        with self._cond:
            return [model.as_dict() for model in self._models.values()]

    def _model(self, name: str) -> Model:
        model = self._models.get(name)
        if model is None:
            raise NotFound(f"unknown model {name!r}")
        return model

    def _credential(self, api_key: str) -> Credential:
        credential = self._credentials.get(api_key)
        if credential is None:
            raise NotFound("no model has that API key")
        return credential

    def deactivate_credential(self, api_key: str) -> None:
        with self._cond:
            self._credential(api_key).active = False

    def delete_credential(self, api_key: str) -> None:
        with self._cond:
            self._credential(api_key).deleted = True

    def delete_user(self, model: str) -> None:
        with self._cond:
            self._model(model).user_deleted = True

    def delete_model(self, model: str) -> None:
        with self._cond:
            self._model(model).deleted = True

    def delete_configuration(self, model: str) -> None:
        with self._cond:
            self._model(model).configuration_deleted = True

    def delete_job(self, job_id: str) -> None:
        """Delete a retrain job, or a model's base job (its ``base_job_id``)."""
        with self._cond:
            if job_id in self._jobs:
                self._jobs[job_id].deleted = True
            else:
                model = next((m for m in self._models.values() if m.base_job_id == job_id), None)
                if model is None:
                    raise NotFound(f"unknown job {job_id!r}")
                model.base_job_deleted = True
            self._cond.notify_all()

    def effective_settings(self, model: str | None) -> Settings:
        with self._cond:
            if model is None:
                return self.settings
            return replace(self.settings, **self._model(model).overrides)

    def set_settings(self, changes: Mapping[str, Any], model: str | None = None) -> dict[str, Any]:
        """Change the global settings, or one model's overrides; returns the effective settings."""
        with self._cond:
            if model is None:
                self.settings = self.settings.updated(changes)
            else:
                target = self._model(model)
                self.settings.updated({**target.overrides, **changes})  # validates
                target.overrides.update(changes)
            return self.effective_settings(model).as_dict()

    # -- API endpoints ---------------------------------------------------------------------------------------

    def _authenticate(self, api_key: str | None) -> Model:
        credential = self._credentials.get(api_key) if api_key else None
        if credential is None:
            raise errors.INVALID_API_KEY
        if credential.deleted:
            raise errors.NOT_FOUND_CREDENTIAL
        if not credential.active:
            raise errors.INACTIVE_CREDENTIAL
        return self._models[credential.model]

    def create_job(self, api_key: str | None, filename: str | None, url_base: str) -> dict[str, Any]:
        """Endpoint 1: a new retrain job and its presigned upload URL."""
        with self._cond:
            model = self._authenticate(api_key)
            if model.user_deleted:
                raise errors.USER_DELETED
            if model.deleted:
                raise errors.MODEL_DELETED
            if model.base_job_deleted:
                raise errors.JOB_DELETED
            if model.configuration_deleted:
                raise errors.CONFIGURATION_NOT_FOUND
            name = (filename or "").lstrip("\ufeff").strip()
            if not name:
                raise errors.FILENAME_REQUIRED
            now = self.now()
            job = Job(str(uuid.uuid4()), next(self._seq), model.name, name, now, now)
            self._jobs[job.id] = job
            ttl = self.effective_settings(model.name).upload_url_ttl
            url = self.signer.sign(url_base, "PUT", UPLOAD_PATH.format(id=job.id), now, ttl)
            return {"retrain_job_id": job.id, "upload_url": url}

    def _own_job(self, model: Model, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.model != model.name:
            raise errors.RETRAIN_JOB_NOT_FOUND
        return job

    def job_status(self, api_key: str | None, job_id: str, url_base: str) -> dict[str, Any]:
        """Endpoint 2: the job's status; a finished job gets a freshly signed ``download_url``."""
        with self._cond:
            model = self._authenticate(api_key)
            if model.user_deleted:
                raise errors.NOT_FOUND_CREDENTIAL
            job = self._own_job(model, job_id)
            if job.deleted or model.deleted:
                raise errors.JOB_DELETED
            now = self.now()
            self._refresh(job, now)
            body: dict[str, Any] = {"status": job.status}
            if job.status == "job_finished":
                result = self._result_file(job)
                ttl = self.effective_settings(model.name).download_url_ttl
                path = RESULT_PATH.format(id=job.id, name=result.name)
                body["model_id"] = job.model_id
                body["download_url"] = self.signer.sign(url_base, "GET", path, now, ttl)
            if job.status == "job_failed":
                body["message"] = job.message
            body["metadata"] = {"retrain_job_id": job.id}
            return body

    def switch_model(self, api_key: str | None, job_id: str) -> dict[str, Any]:
        """Endpoint 3: publish the retrained model; repeatable once the job is finished (assumed)."""
        with self._cond:
            model = self._authenticate(api_key)
            if model.user_deleted:
                raise errors.NOT_FOUND_CREDENTIAL
            if model.deleted:
                raise errors.CLASSIFIER_NOT_FOUND
            job = self._own_job(model, job_id)
            if job.deleted:
                raise errors.RETRAIN_JOB_NOT_FOUND
            now = self.now()
            self._refresh(job, now)
            if job.status != "job_finished":
                raise errors.RETRAIN_JOB_NOT_FINISHED
            job.switch_count += 1
            model.published_model_id = job.model_id
            self._switches.append(
                {"job_id": job.id, "model": model.name, "model_id": job.model_id, "at": iso(now)}
            )
            return {"metadata": {"retrain_job_id": job.id}}

    def training_status(self, api_key: str | None, process_id: str | None, url_base: str) -> dict[str, Any]:
        """Endpoint 4: a training process's status; a finished one gets a freshly signed ``result_url``."""
        with self._cond:
            model = self._authenticate(api_key)
            if model.user_deleted:
                raise errors.USER_DELETED
            training = self._trainings.get(process_id or "")
            if training is None or training.model != model.name:
                raise errors.EXTERNAL_PROCESS_NOT_FOUND
            now = self.now()
            self._refresh_training(training, now)
            body: dict[str, Any] = {
                "status": training.status,
                "created_datetime": iso(training.created),
                "updated_datetime": iso(training.updated),
            }
            if training.status == "finished":
                result = self._result_file(training)
                ttl = self.effective_settings(model.name).download_url_ttl
                path = RESULT_PATH.format(id=training.id, name=result.name)
                body["result_url"] = self.signer.sign(url_base, "GET", path, now, ttl)
            return body

    # -- progress --------------------------------------------------------------------------------------------

    def _refresh(self, job: Job, now: float) -> None:
        if job.status != "job_running" or job.finish_at is None or now < job.finish_at:
            return
        if job.validation == "pending" or job.outcome == "never":
            return
        job.updated = max(job.updated, job.finish_at, job.validated_at or 0.0)
        if job.outcome == "finished":
            job.status = "job_finished"
            job.model_id = MODEL_ID_BASE + job.seq
        else:
            job.status = "job_failed"
            job.message = job.failure_message

    def _refresh_training(self, training: Training, now: float) -> None:
        if training.status != "running" or now < training.finish_at or training.outcome == "never":
            return
        training.status = "finished" if training.outcome == "finished" else "failed"
        training.updated = training.finish_at

    def _result_file(self, item: Job | Training) -> ResultFile:
        """The item's results file, written on first use (or the file an admin call set)."""
        if item.result is None:
            if isinstance(item, Job):
                data = build_results_zip(
                    "retrain", item.id, item.model, item.upload_sha256 or "", item.tables
                )
                name = RETRAIN_RESULT_NAME
            else:
                data = build_results_zip("training", item.id, item.model, item.outcome)
                name = TRAINING_RESULT_NAME
            folder = self._results_dir / item.id
            folder.mkdir(exist_ok=True)
            path = folder / name
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            os.replace(partial, path)
            item.result = ResultFile(path, name)
        return item.result

    def create_training(self, model: str, seconds: float, outcome: str) -> str:
        if not _is_number(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {list(OUTCOMES)}, got {outcome!r}")
        with self._cond:
            self._model(model)
            now = self.now()
            training = Training(str(uuid.uuid4()), model, now, now + seconds, outcome, updated=now)
            self._trainings[training.id] = training
            return training.id

    # -- storage ---------------------------------------------------------------------------------------------

    def begin_upload(self, job_id: str) -> Path:
        """Claim the job's single upload; returns where to write the bytes."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.deleted:
                raise errors.no_such_key(f"retrain job {job_id}")
            if job.uploaded or job.uploading:
                raise errors.upload_conflict()
            job.uploading = True
            return self._uploads_dir / f"{job.id}.part"

    def abort_upload(self, job_id: str, partial: Path) -> None:
        with self._cond:
            partial.unlink(missing_ok=True)
            job = self._jobs.get(job_id)
            if job is not None:
                job.uploading = False

    def complete_upload(self, job_id: str, partial: Path, size: int, sha256: str) -> ValidationTask | None:
        """Store the upload and start the job; returns the input check to run, if validation is on."""
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None:  # the emulator was reset while the bytes were arriving
                partial.unlink(missing_ok=True)
                raise errors.no_such_key(f"retrain job {job_id}")
            final = self._uploads_dir / f"{job.id}.data"
            os.replace(partial, final)
            settings = self.effective_settings(job.model)
            now = self.now()
            job.uploading = False
            job.uploaded = True
            job.upload_path = final
            job.upload_size = size
            job.upload_sha256 = sha256
            job.status = "job_running"
            job.updated = now
            job.finish_at = now + settings.job_seconds
            job.outcome = settings.outcome
            job.failure_message = settings.failure_message
            job.validation = "pending" if settings.validate else "skipped"
            self._uploads.append(
                {
                    "job_id": job.id,
                    "model": job.model,
                    "filename": job.filename,
                    "size": size,
                    "sha256": sha256,
                    "at": iso(now),
                }
            )
            self._cond.notify_all()
            return ValidationTask(job.id, final, job.filename) if settings.validate else None

    def finish_validation(self, job_id: str, result: ValidationResult) -> None:
        with self._cond:
            job = self._jobs.get(job_id)
            if job is None or job.validation != "pending":
                return
            job.tables = result.tables
            job.validated_at = self.now()
            if result.ok:
                job.validation = "passed"
            else:
                job.validation = "failed"
                if job.status == "job_running":
                    job.status = "job_failed"
                    job.message = result.message
                    job.updated = job.validated_at
            self._cond.notify_all()

    def result_for_download(self, item_id: str, name: str) -> ResultFile:
        """The results file a presigned download URL names, if the job/process is finished."""
        with self._cond:
            now = self.now()
            job = self._jobs.get(item_id)
            if job is not None and not job.deleted:
                self._refresh(job, now)
                if job.status == "job_finished" and self._result_file(job).name == name:
                    return self._result_file(job)
            training = self._trainings.get(item_id)
            if training is not None:
                self._refresh_training(training, now)
                if training.status == "finished" and self._result_file(training).name == name:
                    return self._result_file(training)
            raise errors.no_such_key(f"results/{item_id}/{name}")

    # -- admin views -----------------------------------------------------------------------------------------

    def _item(self, item_id: str) -> Job | Training:
        item: Job | Training | None = self._jobs.get(item_id) or self._trainings.get(item_id)
        if item is None:
            raise NotFound(f"unknown retrain job or training process {item_id!r}")
        return item

    def set_result_file(self, item_id: str, path: str) -> dict[str, Any]:
        """Serve the local file ``path`` as the results file of a job or training process."""
        source = Path(path)
        if not source.is_absolute():
            raise ValueError(f"result file path must be absolute, got {path!r}")
        if not source.is_file():
            raise ValueError(f"result file {path!r} does not exist or is not a file")
        with self._cond:
            item = self._item(item_id)
            item.result = ResultFile(source, source.name)
            return {"id": item_id, "name": source.name, "size": source.stat().st_size}

    def result_file(self, item_id: str) -> ResultFile:
        """The results file of a job or training process (written now if it had none)."""
        with self._cond:
            return self._result_file(self._item(item_id))

    def jobs(self) -> list[dict[str, Any]]:
        with self._cond:
            now = self.now()
            for job in self._jobs.values():
                self._refresh(job, now)
            return [job.as_dict() for job in self._jobs.values()]

    def trainings(self) -> list[dict[str, Any]]:
        with self._cond:
            now = self.now()
            for training in self._trainings.values():
                self._refresh_training(training, now)
            return [training.as_dict() for training in self._trainings.values()]

    def uploads(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(upload) for upload in self._uploads]

    def switches(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(switch) for switch in self._switches]

    def log_request(
        self, method: str, path: str, endpoint: str, status: int | None, fault: str | None
    ) -> None:
        with self._cond:
            self._requests.append(
                {
                    "at": iso(self.now()),
                    "method": method,
                    "path": path,
                    "endpoint": endpoint,
                    "status": status,
                    "fault": fault,
                }
            )

    def requests_log(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(entry) for entry in self._requests]

    def wait_for(
        self, item_id: str, statuses: Iterable[str], timeout: float, stopped: Callable[[], bool]
    ) -> tuple[dict[str, Any], bool]:
        """Block until a job or training process reaches one of ``statuses`` (or ``timeout`` seconds pass).

        Returns its admin view and whether it got there. Wakes on every state change and at the time the
        item is due to finish, so no polling interval is involved.
        """
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                item = self._item(item_id)
                now = self.now()
                if isinstance(item, Job):
                    self._refresh(item, now)
                    view = item.as_dict()
                else:
                    self._refresh_training(item, now)
                    view = item.as_dict()
                remaining = deadline - time.monotonic()
                if item.status in wanted or remaining <= 0 or stopped():
                    return view, item.status in wanted
                pause = remaining
                finish_at = item.finish_at
                if finish_at is not None and finish_at > now:
                    pause = min(pause, finish_at - now + 0.001)
                self._cond.wait(pause)

    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()
