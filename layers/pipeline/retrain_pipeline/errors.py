"""The pipeline's own errors.

A handler's exception class name is the error name the state machine sees, so every class name here
is part of the contract (docs/architecture.md, "Errors as ASL names"). Permanent errors go straight to
the failure path; transient ones are retried by the state machine. Messages name the file, the model
or the documented status in plain words and never contain an API key or a presigned URL.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every pipeline error; ``transient`` tells whether retrying may help."""

    transient: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermanentPipelineError(PipelineError):
    """Retrying the same step with the same input cannot succeed."""


class TransientPipelineError(PipelineError):
    """A retry of the same step may succeed."""

    transient = True


def _where(bucket: str | None, key: str) -> str:
    return f"s3://{bucket}/{key}" if bucket else repr(key)


class EmptyObject(PermanentPipelineError):
    """The object holds no bytes."""

    def __init__(self, bucket: str | None, key: str) -> None:
        super().__init__(f"{_where(bucket, key)} is empty (0 bytes): there is nothing to retrain with.")
        self.key = key


class FolderMarker(PermanentPipelineError):
    """The key ends with '/': a console folder, not a file."""

    def __init__(self, bucket: str | None, key: str) -> None:
        super().__init__(f"{_where(bucket, key)} is a folder marker, not a data file; it was ignored.")
        self.key = key


class UnsupportedFileType(PermanentPipelineError):
    """The extension is not one of ALLOWED_EXTENSIONS."""

    def __init__(self, bucket: str | None, key: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"{_where(bucket, key)} has an unsupported file type; accepted extensions are "
            f"{', '.join(allowed)} (setting ALLOWED_EXTENSIONS)."
        )
        self.key = key


class KeyOutsideModelFolder(PermanentPipelineError):
    """The key is not ``incoming/<model>/<name>``, so no model can be read from it."""

    def __init__(self, bucket: str | None, key: str, prefix: str) -> None:
        super().__init__(
            f"{_where(bucket, key)} is not inside a model folder: put files at {prefix}<model>/<name> "
            "where <model> is a name in the API key secret."
        )
        self.key = key


class KeyOutsidePrefix(PermanentPipelineError):
    """The key is not under the workflow's own prefix (``incoming/`` or ``training/``): the rule should not
    have started this execution. The state machine ends at once without a failure record or a
    notification, so nothing the pipeline writes (``results/``, ``failed/``) can ever start it again."""

    def __init__(self, bucket: str | None, key: str, prefix: str) -> None:
        super().__init__(
            f"{_where(bucket, key)} is not under {prefix}; it was ignored "
            "(nothing written, nothing notified)."
        )
        self.key = key


class SourceObjectNotFound(PermanentPipelineError):
    """Neither the key as the event gave it nor its URL-decoded form names an object in the bucket."""

    def __init__(self, bucket: str | None, key: str, decoded: str) -> None:
        super().__init__(
            f"no object exists at {_where(bucket, key)} (the key as the event gave it) nor at "
            f"{_where(bucket, decoded)} (the key URL-decoded); it may have been deleted or renamed."
        )
        self.key = key
        self.decoded = decoded


class BadZipLayout(PermanentPipelineError):
    """A zip upload without the documented ``train_src/`` + ``eval_src/`` layout."""

    def __init__(self, bucket: str | None, key: str, problems: list[str] | tuple[str, ...]) -> None:
        detail = "; ".join(problems) if problems else "unknown layout problem"
        super().__init__(
            f"{_where(bucket, key)} is not a valid retrain zip (it must hold train_src/<train>.csv and "
            f"eval_src/<eval>.csv): {detail}."
        )
        self.key = key
        self.problems = list(problems)


class ModelNotConfigured(PermanentPipelineError):
    """The model named by the folder has no API key in the secret."""

    def __init__(self, model: str, secret_id: str) -> None:
        super().__init__(
            f"Model {model!r} has no API key in secret {secret_id!r}: add an entry "
            f'"{model}": "<api key>" to the secret, then upload the file again.'
        )
        self.model = model


class SecretMalformed(PermanentPipelineError):
    """The secret is not the documented JSON map (the value itself is never quoted)."""

    def __init__(self, secret_id: str, problem: str) -> None:
        super().__init__(
            f"Secret {secret_id!r} is malformed: {problem}. Expected a JSON object "
            '{"<model>": "<api key>"} or {"<model>": {"api_key": "<api key>", "auto_switch": true}}.'
        )


class JobFailed(PermanentPipelineError):
    """Prediction One reported a terminal failure status for the retrain job."""

    def __init__(self, model: str, retrain_job_id: str, status: str, message: str | None) -> None:
        reason = f": {message}" if message else " (no message given)"
        super().__init__(
            f"Retrain job {retrain_job_id} of model {model!r} ended with status {status!r}{reason}"
        )
        self.retrain_job_id = retrain_job_id


class JobDeadlineExceeded(PermanentPipelineError):
    """The job was still running at its deadline (JOB_DEADLINE_HOURS)."""

    def __init__(self, model: str, retrain_job_id: str, status: str | None, deadline_at: str) -> None:
        super().__init__(
            f"Retrain job {retrain_job_id} of model {model!r} was still {status or 'running'!r} at its "
            f"deadline {deadline_at} (setting JOB_DEADLINE_HOURS); it was not archived or switched."
        )
        self.retrain_job_id = retrain_job_id


class ResultNotAvailable(PermanentPipelineError):
    """The job is finished but the status endpoint gave no download URL."""

    def __init__(self, model: str, retrain_job_id: str, status: str | None) -> None:
        super().__init__(
            f"Retrain job {retrain_job_id} of model {model!r} has status {status!r} but no download_url: "
            "the results file cannot be archived."
        )
        self.retrain_job_id = retrain_job_id


class ModelSwitchBusy(TransientPipelineError):
    """Another execution holds the model's switch gate right now."""

    def __init__(self, model: str, holder: str | None, lease_until: int | None) -> None:
        until = f" until {lease_until} (epoch seconds)" if lease_until else ""
        super().__init__(
            f"Model {model!r} is being switched by another execution ({holder or 'unknown'}){until}; "
            "retry later."
        )
        self.model = model


class BadTrainingRequest(PermanentPipelineError):
    """A ``training/<model>/<name>.json`` request that does not hold an external_process_id."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(
            f"{where} is not a valid training watch request ({problem}); expected a JSON object "
            '{"external_process_id": "<id>"}.'
        )


class TrainingFailed(PermanentPipelineError):
    """Prediction One reported a terminal failure status for the watched training run."""

    def __init__(self, model: str, external_process_id: str, status: str) -> None:
        super().__init__(
            f"Training run {external_process_id} of model {model!r} ended with status {status!r} "
            "(setting FAILURE_STATUSES); there is no result to archive."
        )
        self.external_process_id = external_process_id


class TrainingDeadlineExceeded(PermanentPipelineError):
    """The training run was still running at the watch's deadline (JOB_DEADLINE_HOURS)."""

    def __init__(self, model: str, external_process_id: str, status: str | None, deadline_at: str) -> None:
        super().__init__(
            f"Training run {external_process_id} of model {model!r} was still {status or 'running'!r} at the "
            f"watch's deadline {deadline_at} (setting JOB_DEADLINE_HOURS); nothing was archived."
        )
        self.external_process_id = external_process_id


class TrainingResultNotAvailable(PermanentPipelineError):
    """The training run is finished but the status endpoint gave no result URL."""

    def __init__(self, model: str, external_process_id: str, status: str | None) -> None:
        super().__init__(
            f"Training run {external_process_id} of model {model!r} has status {status!r} but no "
            "result_url: the results file cannot be archived."
        )
        self.external_process_id = external_process_id


__all__ = [
    "BadTrainingRequest",
    "BadZipLayout",
    "EmptyObject",
    "FolderMarker",
    "JobDeadlineExceeded",
    "JobFailed",
    "KeyOutsideModelFolder",
    "ModelNotConfigured",
    "ModelSwitchBusy",
    "PermanentPipelineError",
    "PipelineError",
    "ResultNotAvailable",
    "SecretMalformed",
    "TrainingDeadlineExceeded",
    "TrainingFailed",
    "TrainingResultNotAvailable",
    "TransientPipelineError",
    "UnsupportedFileType",
]


class UnsupportedEncoding(PermanentPipelineError):
    """The file is text in an encoding Prediction One does not read, or not text at all."""

    def __init__(self, bucket: str | None, key: str, found: str, member: str | None = None) -> None:
        inside = f" (zip entry {member!r})" if member else ""
        super().__init__(
            f"{_where(bucket, key)}{inside} is {found}; Prediction One reads CSV/TSV text in UTF-8 or "
            'Shift-JIS only. Save it as CSV in UTF-8 (in Excel: Save As > "CSV UTF-8 (Comma delimited)") '
            'or in Shift-JIS ("CSV (Comma delimited)" on Japanese Windows), then upload it again.'
        )
        self.key = key
        self.found = found
        self.member = member


class ApiKeyMalformed(PermanentPipelineError):
    """A model's API key cannot be sent as an HTTP header value (the key itself is never quoted)."""

    def __init__(self, model: str, secret_id: str, problem: str) -> None:
        super().__init__(
            f"The API key of model {model!r} in secret {secret_id!r} cannot be sent to Prediction One: it "
            f"{problem}. Copy the key again from Prediction One as plain ASCII text (no spaces, line breaks "
            "or full-width characters) and replace the model's entry in the secret, then upload the file "
            "again."
        )
        self.model = model
        self.problem = problem
