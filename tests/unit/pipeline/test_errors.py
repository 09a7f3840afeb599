"""The pipeline's error classes: contract names, permanent vs transient, plain-words messages."""

from __future__ import annotations

from retrain_pipeline import errors

CONTRACT_NAMES = {
    "EmptyObject",
    "FolderMarker",
    "UnsupportedFileType",
    "KeyOutsideModelFolder",
    "BadZipLayout",
    "ModelNotConfigured",
    "SecretMalformed",
    "JobFailed",
    "JobDeadlineExceeded",
    "ModelSwitchBusy",
    "BadTrainingRequest",
}


def test_every_contract_name_is_a_pipeline_error() -> None:
    for name in CONTRACT_NAMES:
        cls = getattr(errors, name)
        assert cls.__name__ == name
        assert issubclass(cls, errors.PipelineError)


def test_only_the_switch_gate_is_transient() -> None:
    transient = {name for name in CONTRACT_NAMES if getattr(errors, name).transient}
    assert transient == {"ModelSwitchBusy"}
    assert issubclass(errors.ModelSwitchBusy, errors.TransientPipelineError)
    assert issubclass(errors.JobFailed, errors.PermanentPipelineError)


def test_messages_name_what_went_wrong() -> None:
    cases = [
        (errors.EmptyObject("b", "incoming/m/a.csv"), ["s3://b/incoming/m/a.csv", "empty"]),
        (errors.FolderMarker("b", "incoming/m/"), ["incoming/m/", "folder"]),
        (
            errors.UnsupportedFileType("b", "incoming/m/a.xls", (".csv",)),
            ["a.xls", ".csv", "ALLOWED_EXTENSIONS"],
        ),
        (errors.KeyOutsideModelFolder("b", "incoming/a.csv", "incoming/"), ["incoming/<model>/<name>"]),
        (errors.BadZipLayout("b", "incoming/m/z.zip", ["no eval"]), ["z.zip", "train_src", "no eval"]),
        (errors.ModelNotConfigured("churn", "keys"), ["'churn'", "'keys'"]),
        (errors.SecretMalformed("keys", "its value is not valid JSON"), ["'keys'", "not valid JSON"]),
        (
            errors.JobFailed("m", "job-1", "job_failed", "Too few rows."),
            ["job-1", "'job_failed'", "Too few rows."],
        ),
        (errors.JobFailed("m", "job-1", "job_failed", None), ["no message given"]),
        (
            errors.JobDeadlineExceeded("m", "job-1", "job_running", "2024-01-02T00:00:00Z"),
            ["JOB_DEADLINE_HOURS"],
        ),
        (errors.ModelSwitchBusy("m", "exec-9", 1700000000), ["exec-9", "1700000000"]),
        (errors.BadTrainingRequest("s3://b/training/m/x.json", "no external_process_id"), ["x.json"]),
        (errors.ResultNotAvailable("m", "job-1", "job_finished"), ["job-1", "no download_url"]),
    ]
    for error, fragments in cases:
        for fragment in fragments:
            assert fragment in str(error), (type(error).__name__, fragment)
        assert error.message == str(error)
