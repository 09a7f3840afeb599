"""A faithful local emulator of the Prediction One external API (retrain and training status), over real HTTP.

``EmulatorServer(host="127.0.0.1", port=0, models={"demo": "demo-key"}, job_seconds=5.0, upload_url_ttl=900,
download_url_ttl=600, storage_dir=None, *, validate=True, limits=DataLimits(), request_timeout=120.0)``
serves it (``start()``/``stop()`` or ``with``); ``.base_url`` has the real port; ``.admin`` is an
``EmulatorAdmin`` for the admin routes. Uploads and results live in ``storage_dir`` (default: a temporary
folder removed by ``stop()``). ``p1-retrain emulator`` runs one until Ctrl-C or SIGTERM.

Where the API reference pages are silent, the emulator does what we assume the service does; each assumption
(error shape, upload URL, result URLs, data limits, switching twice, ...) is a row of the table in
``docs/development.md``, section "What the emulator knows and what it assumes".

API routes (any Host header; key in ``x-api-key``, header name case-insensitive)
    1  GET /v1/external/retrain_jobs/upload_url?filename=NAME    -> {"retrain_job_id", "upload_url"}
    2  GET /v1/external/retrain_jobs/{id}                        -> {"status", "model_id"?, "message"?,
                                                                     "download_url"?, "metadata"}
    3  PUT /v1/external/retrain_jobs/{id}/update_model           -> {"metadata": {"retrain_job_id"}}
    4  GET /v1/external/models/results?external_process_id=ID   -> {"status", "created_datetime",
                                                                     "updated_datetime", "result_url"?}
Errors use the assumed shape ``{"code", "error", "message"}`` with HTTP 400 (4001000204) or 500 (5001000201).
Unknown paths answer 404 and known paths with another method 405, both JSON ``{"message"}``.

Which error each endpoint answers, checked in this order
    all    no ``x-api-key`` header, or a key no model has          -> ``invalid_api_key.``
           a credential deleted by ``delete_credential``           -> ``Not_found_credential.``
           a credential deactivated by ``deactivate_credential``   -> ``Inactive_credential.``
    1      user deleted -> ``This user may be deleted.``; model deleted -> ``This model may be deleted.``;
           the model's base job deleted (``delete_job(base_job_id)``; every model has one, the training job
           it came from, listed by ``models()``) -> ``This job may be deleted.``; configuration deleted ->
           ``Not found configuration_file.`` (HTTP 500); no or blank ``filename`` -> ``filename is required.``
           (undocumented message, documented code). A leading BOM and surrounding whitespace (the newline
           ``curl --data-urlencode filename@param.txt`` keeps) are removed from the name.
    2      user deleted -> ``Not_found_credential.`` (the user's credentials go with it: 2 documents no user
           row); unknown id, or a job of another model -> ``Not found retrain job.``; job deleted, or its
           model deleted -> ``This job may be deleted.``
    3      user deleted -> ``Not_found_credential.``; model deleted -> ``Not found classifier.``; unknown,
           another model's or deleted job -> ``Not found retrain job.`` (3 documents no "deleted" row); a job
           not ``job_finished`` (created, running or failed) -> ``Retrain job is not finished.``. A second
           switch of a finished job succeeds again and is recorded again (assumed: "switching twice").
    4      user deleted -> ``This user may be deleted.``; missing, unknown or another model's process ->
           ``Not found external_process_id.`` (undocumented message, documented code). Deleting a model or a
           configuration does not affect training processes.

Jobs: ``job_created`` (URL issued) -> upload -> ``job_running`` -> after ``job_seconds``: ``job_finished``
(``model_id`` = 100000 + the job's sequence number, and a freshly signed ``download_url`` on every call) or
``job_failed`` (``message``), as the ``outcome`` setting says (``finished``, ``failed``, ``never`` = stays
running). A job keeps the settings in force when its upload completed. With ``validate`` on, the upload is
checked after the PUT was answered (data limits: CSV/TSV 100..1,000,000 rows, 2..200 columns, every record
as wide as the header; ``.zip`` with exactly one ``train_src/<x>.csv|tsv`` and one ``eval_src/<y>.csv|tsv``,
each within the limits; other extensions are refused); a failed check fails the job at once with a message
such as ``train_src/a.csv: 12 rows; at least 100 required``, and a job never finishes before its check did.

Storage (S3-like; no API key; HMAC-signed ``X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature``)
    PUT /_storage/upload/{job}          the upload URL. Needs ``Content-Length`` (chunked -> 411
        ``MissingContentLength``); bad signature -> 403 ``SignatureDoesNotMatch``; expired -> 403
        ``AccessDenied`` "Request has expired"; second upload of a job -> 409; deleted job -> 404. Honours
        ``Expect: 100-continue`` (refusals cost no body). Streams to disk, records size and SHA-256.
    GET /_storage/results/{id}/{name}   ``download_url`` / ``result_url``: the results zip (metrics.json,
        feature_importance.csv, evaluation.csv; the same bytes for the same job), or the file set by
        ``set_result_file``; streamed with sendfile; single ``Range`` requests answer 206.
Storage errors are S3-style XML bodies.

Admin routes (JSON, no key, local use only; never fault-injected, not in the request log)
    GET  /_emulator/health                          POST /_emulator/reset
    GET  /_emulator/models                          POST /_emulator/models {"name", "api_key"}
    POST /_emulator/credentials/deactivate {"api_key"}   POST /_emulator/credentials/delete {"api_key"}
    POST /_emulator/models/{name}/delete_user | /delete | /delete_configuration
    GET  /_emulator/jobs                            POST /_emulator/jobs/{id}/delete
    GET  /_emulator/jobs/{id}/wait?status=a,b&timeout=S   -> the job once it has one of the statuses
    GET  /_emulator/jobs/{id}/result (bytes)        PUT  /_emulator/jobs/{id}/result {"path": "/abs/file"}
    GET|PUT /_emulator/settings {"job_seconds", "outcome", "failure_message", "upload_url_ttl",
         "download_url_ttl", "validate", "model"?}  (with "model": that model's overrides)
    GET|PUT|DELETE /_emulator/faults {"rate", "seed", "kinds", "endpoints", "slow_seconds"}
    GET  /_emulator/faults/counts   GET /_emulator/uploads   GET /_emulator/switches   GET /_emulator/requests
    GET|POST /_emulator/trainings {"model", "seconds", "outcome"} -> {"external_process_id"}
    GET  /_emulator/trainings/{id}/wait?status=...&timeout=S
    POST /_emulator/clock {"advance_seconds"}  (moves the emulator's clock: URLs expire, jobs finish)
``/jobs/{id}/result`` routes also accept a training's ``external_process_id``.

Faults: each API or storage request of the chosen ``endpoints`` (``upload_url``, ``retrain_status``,
``update_model``, ``training_status``, ``upload``, ``download``) fails with probability ``rate``, with one of
the chosen ``kinds`` that applies to it, drawn from ``random.Random(seed)`` (reproducible for the same order
of requests): ``500`` (API: the 5001000201 body with "Internal server error."; storage: XML
``InternalError``), ``502`` (HTML), ``503``, ``429`` (``Retry-After: 1``), ``reset`` (TCP reset, no answer),
``slow`` (waits ``slow_seconds``, default 2, then processes and answers normally), ``expired_url`` (storage:
403 expired), ``lost_answer`` (upload only: the upload is stored and the job starts, then the connection is
reset). The others answer before processing, so the request changes nothing.

The request log keeps the last 100,000 API/storage requests: method, path without query string, endpoint,
status (null when no answer was sent) and fault; it never holds keys or signatures.
"""

from __future__ import annotations

from p1_retrain.emulator.admin import EmulatorAdmin, EmulatorAdminError
from p1_retrain.emulator.server import EmulatorServer
from p1_retrain.emulator.validation import DataLimits

__all__ = ["DataLimits", "EmulatorAdmin", "EmulatorAdminError", "EmulatorServer"]
