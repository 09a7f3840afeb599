"""Where the presigned URLs are served: the upload (``PUT /_storage/upload/{job}``) and the results download
(``GET /_storage/results/{id}/{name}``), with S3-style XML errors.

Signatures are checked by ``presign``; the upload body streams to disk through ``receive``; the download
streams from disk with sendfile and honours a single ``Range``. A route has the signature of
``api_routes.Route``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

from p1_retrain.emulator import errors
from p1_retrain.emulator.exchange import BodyError, HttpExchange
from p1_retrain.emulator.receive import BodyEnded, Progress, StoreFailed, receive_to_file

LOG = logging.getLogger("p1_retrain.emulator")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def upload(
    exchange: HttpExchange, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
) -> None:
    """The presigned upload: verify, stream the body to disk, start the job (and its input check)."""
    server = exchange.server
    state = server.state
    job_id = match["id"]
    try:
        state.signer.verify("PUT", path, query, state.now(), exchange.query_pairs)
        if exchange.chunked():
            raise errors.missing_content_length()
        try:
            length = exchange.content_length()
        except BodyError as exc:
            exchange.close_connection = True
            raise errors.StorageError(400, "InvalidArgument", str(exc)) from exc
        if length is None:
            raise errors.missing_content_length()
        partial = state.begin_upload(job_id)
    except errors.StorageError as error:
        exchange.send_storage_error(error)
        return
    progress = Progress()
    try:
        exchange.send_continue()
        size, sha256 = _receive(exchange, length, partial, progress)
    except StoreFailed:
        LOG.exception("storing the upload of retrain job %s failed", job_id)
        state.abort_upload(job_id, partial)
        exchange.send_storage_error(
            errors.StorageError(500, "InternalError", "The upload could not be stored.")
        )
        return
    except (OSError, BodyError) as exc:
        state.abort_upload(job_id, partial)
        exchange.body_done = True
        exchange.close_connection = True
        if isinstance(exc, TimeoutError):  # the client stalled: tell it, if it still listens
            with contextlib.suppress(OSError):
                exchange.send_storage_error(errors.incomplete_body(progress.value, length))
        return
    exchange.body_done = True
    try:
        task = state.complete_upload(job_id, partial, size, sha256)
    except errors.StorageError as error:
        exchange.send_storage_error(error)
        return
    if task is not None:
        server.validate_later(task)
    if fault == "lost_answer":
        server.faults.record(fault)
        exchange.reset_connection()
        return
    exchange.send(200, headers=(("ETag", f'"{sha256[:32]}"'), ("x-amz-checksum-sha256-hex", sha256)))


def _receive(exchange: HttpExchange, length: int, target: Path, progress: Progress) -> tuple[int, str]:
    """Stream exactly ``length`` body bytes to ``target``; returns size and SHA-256."""
    try:
        sha256 = receive_to_file(exchange.rfile.readinto, length, target, progress)
    except BodyEnded as exc:
        raise BodyError("the client closed the connection before the end of the body") from exc
    return length, sha256


def download(
    exchange: HttpExchange, match: re.Match[str], query: dict[str, str], path: str, fault: str | None
) -> None:
    """The presigned results download (``download_url`` / ``result_url``): the whole file or one range."""
    state = exchange.server.state
    try:
        state.signer.verify("GET", path, query, state.now(), exchange.query_pairs)
        result = state.result_for_download(match["id"], match["name"])
        try:
            stat = result.path.stat()
        except OSError as exc:
            raise errors.no_such_key(f"results/{match['id']}/{match['name']}") from exc
        start, end = byte_range(exchange.headers.get("Range"), stat.st_size)
    except errors.StorageError as error:
        exchange.send_storage_error(error)
        return
    content_type = "application/zip" if result.name.lower().endswith(".zip") else "application/octet-stream"
    exchange.send_file(result.path, stat, start, end, content_type)


def byte_range(header: str | None, size: int) -> tuple[int, int]:
    """The byte range ``[start, end)`` a ``Range`` header asks for; the whole file otherwise."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None or match.group(1) == match.group(2) == "":
        return 0, size
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise errors.range_not_satisfiable(size)
        return max(0, size - suffix), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        raise errors.range_not_satisfiable(size)
    return start, end
