"""The ``curl`` references: the same bytes over the same loopback hops, moved by curl instead of Python.

Upload: ``curl GET <presigned S3 GET> | curl PUT <upload URL>``. A plain ``curl -T - -H "Content-Length: N"``
is not enough: for standard input curl still adds ``Transfer-Encoding: chunked`` (and ``Expect:
100-continue``), so the request carries both headers. Blanking them (``-H "Transfer-Encoding:" -H
"Expect:"``) makes curl send exactly ``Content-Length: N`` and the raw body, as the real client does.

Archive: ``curl GET <download URL> | split --filter`` that PUTs each fixed-size piece to a presigned S3
``UploadPart`` URL with ``curl``, then one ``CompleteMultipartUpload``: the same multipart protocol, the
same part size and the same single pass over the stream as the real code, with no Python in the data path.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from bench.aws import AwsFixture
from bench.procs import OUT, BenchError, run_shell

_CURL = 'curl -sS -f --max-time "$MAX_TIME"'
_PUT = '-T - -H "Transfer-Encoding:" -H "Expect:" -o /dev/null'


def get_only(name: str, source_url: str, timeout: float) -> float:
    """Seconds for curl to GET ``source_url`` into ``/dev/null``: the source's own ceiling."""
    script = f'{_CURL} -o /dev/null "$SRC_URL"'
    return run_shell(name, script, timeout, {"SRC_URL": source_url, "MAX_TIME": str(int(timeout))})


def upload(name: str, source_url: str, upload_url: str, size: int, timeout: float) -> float:
    """Seconds for ``curl GET | curl PUT`` with ``Content-Length: size``."""
    script = f'{_CURL} -o - "$SRC_URL" | {_CURL} {_PUT} -H "Content-Length: $SIZE" "$DST_URL"'
    env = {"SRC_URL": source_url, "DST_URL": upload_url, "SIZE": str(size), "MAX_TIME": str(int(timeout))}
    return run_shell(name, script, timeout, env)


def archive(
    name: str, source_url: str, aws: AwsFixture, key: str, size: int, part_size: int, timeout: float
) -> float:
    """Seconds for ``curl GET | split --filter 'curl PUT part'`` plus creating and completing the upload."""
    if not shutil.which("split"):
        raise BenchError("coreutils split is needed for the archive reference")
    parts_dir = OUT / f"{name}-parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir(parents=True)
    count = max(1, -(-size // part_size))
    started = time.perf_counter()
    upload_id = aws.s3.create_multipart_upload(Bucket=aws.bucket, Key=key)["UploadId"]
    for index in range(count):
        piece = f"part{index:05d}"
        url = aws.s3.generate_presigned_url(
            "upload_part",
            Params={"Bucket": aws.bucket, "Key": key, "UploadId": upload_id, "PartNumber": index + 1},
        )
        (parts_dir / f"{piece}.url").write_text(url)
        (parts_dir / f"{piece}.len").write_text(str(min(part_size, size - index * part_size)))
    put_piece = (
        f'{_CURL} {_PUT} -H "Content-Length: $(cat "$FILE.len")" -D "$FILE.headers" "$(cat "$FILE.url")"'
    )
    split = f'split -d -a 5 -b "$PART_SIZE" --filter={_quote(put_piece)} - "$PARTS/part"'
    script = f'{_CURL} -o - "$SRC_URL" | {split}'
    env = {
        "SRC_URL": source_url,
        "PARTS": str(parts_dir),
        "PART_SIZE": str(part_size),
        "MAX_TIME": str(int(timeout)),
    }
    try:
        run_shell(name, script, timeout, env)
        parts = [
            {"PartNumber": index + 1, "ETag": _etag(parts_dir / f"part{index:05d}.headers")}
            for index in range(count)
        ]
        aws.s3.complete_multipart_upload(
            Bucket=aws.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        aws.s3.abort_multipart_upload(Bucket=aws.bucket, Key=key, UploadId=upload_id)
        raise
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return time.perf_counter() - started


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _etag(headers: Path) -> str:
    if not headers.exists():
        raise BenchError(f"curl reference: no answer recorded for {headers.stem}")
    match = re.search(r"^etag:\s*(\S+)\s*$", headers.read_text(), re.IGNORECASE | re.MULTILINE)
    if match is None:
        raise BenchError(f"curl reference: no ETag in the answer for {headers.stem}")
    return match.group(1)
