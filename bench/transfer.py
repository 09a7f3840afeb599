"""Upload (S3 → Prediction One) and archive (Prediction One → S3) of one big file: memory and speed.

Both servers run in processes of their own (moto for S3, Secrets Manager and DynamoDB; the emulator with
input validation off), so neither is counted. Each measured transfer runs in a fresh Python process that does
only that transfer (``bench.transfer_worker``) and reports its own peak RSS. The reference is curl moving
the same bytes over the same hops in the same run (``bench.curlref``); runs alternate code and curl so drift
on the machine hits both alike. Every transfer is checked: the emulator's SHA-256 of what it received, or the
size and sampled byte ranges of what landed in S3.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import curlref, data
from bench.api import PublicApi
from bench.aws import AwsFixture
from bench.procs import OUT, BenchError, Service, run_json
from bench.report import Report, at_least, at_most
from bench.template import function_memory_mb

MIB = 1024 * 1024
MODEL = "demo"
API_KEY = "bench-demo-key"
SOURCE_KEY = f"incoming/{MODEL}/bench-training.csv"
RSS_LIMIT_MIB = 128
#: moto keeps objects above 5 MiB in temporary files; in memory instead, the disk does not bound both sides.
MOTO_IN_MEMORY = {"MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(4 * 1024 * MIB)}
RATIO_TARGET = 0.8


@dataclass
class Runs:
    """Seconds and peak RSS of the repeated runs of one variant."""

    size: int
    seconds: list[float] = field(default_factory=list)
    peaks: list[float] = field(default_factory=list)
    before: list[float] = field(default_factory=list)

    def add(self, seconds: float, report: dict[str, Any] | None = None) -> None:
        self.seconds.append(seconds)
        if report is not None:
            self.peaks.append(report["peak_rss_mib"])
            self.before.append(report["rss_before_mib"])

    @property
    def mib_per_s(self) -> float:
        """Best of the runs: other load on the machine only ever slows a transfer down."""
        return self.size / MIB / min(self.seconds)

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "seconds": [round(s, 3) for s in self.seconds],
            "best_mib_per_s": round(self.mib_per_s, 1),
            "median_mib_per_s": round(self.size / MIB / statistics.median(self.seconds), 1),
        }
        if self.peaks:
            result["peak_rss_mib"] = self.peaks
            result["rss_before_transfer_mib"] = self.before
        return result


def _memory(function: str) -> int:
    try:
        return function_memory_mb(function)
    except BenchError:
        return 128


def part_size() -> int:
    """The archive writer's first part size, read from the code: the curl reference cuts the same parts."""
    from retrain_pipeline.s3io import S3MultipartWriter

    return int(inspect.signature(S3MultipartWriter).parameters["part_size"].default)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def object_created_event(aws: AwsFixture, key: str, head: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge "Object Created" event S3 sends for ``key``, as AWS spells it."""
    return {
        "version": "0",
        "id": "b5c1e1a2-0000-4000-8000-000000000001",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": _iso(_now()),
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{aws.bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": aws.bucket},
            "object": {
                "key": key,
                "size": int(head["ContentLength"]),
                "etag": head["ETag"].strip('"'),
                "version-id": head.get("VersionId"),
                "sequencer": "0062E99A88DC407460",
            },
            "request-id": "BENCH",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def _execution_id(name: str) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:p1-retrain-bench:{name}"


def archive_event(aws: AwsFixture, head: dict[str, Any], job_id: str, run: str) -> dict[str, Any]:
    """The state the retrain state machine hands ``Archive`` once the job is ``job_finished``."""
    now = _now()
    return {
        "source": {
            "bucket": aws.bucket,
            "key": SOURCE_KEY,
            "version_id": head.get("VersionId"),
            "etag": head["ETag"].strip('"'),
            "size": int(head["ContentLength"]),
            "sequencer": "0062E99A88DC407460",
            "event_time": _iso(now - timedelta(minutes=30)),
        },
        "job": {
            "model": MODEL,
            "retrain_job_id": job_id,
            "filename": Path(SOURCE_KEY).name,
            "uploaded_at": _iso(now - timedelta(minutes=30)),
            "auto_switch": False,
        },
        "poll": {
            "wait_seconds": 180,
            "polls": 12,
            "started_at": _iso(now - timedelta(minutes=30)),
            "deadline_at": _iso(now + timedelta(hours=23)),
            "checked_at": _iso(now),
            "status": "job_finished",
            "state": "finished",
            "message": None,
            "model_id": 1,
        },
        "execution_id": _execution_id(run),
    }


class TransferBench:
    """Owns the two servers, the data and the measurements of both directions."""

    def __init__(self, size_mib: int, repeats: int, timeout: float) -> None:
        self.size = size_mib * MIB
        self.repeats = repeats
        self.timeout = timeout
        self.work = OUT / "transfer"
        self.storage = self.work / "emulator"
        self.details: dict[str, Any] = {}

    def _worker(self, name: str, mode: str, env: dict[str, str], settings: dict[str, Any]) -> dict[str, Any]:
        env = {**env, "BENCH_WORKER": json.dumps(settings)}
        return run_json(name, ["bench.transfer_worker", mode], self.timeout, env)

    def _alternate(self, first: Callable[[int], None], second: Callable[[int], None]) -> None:
        """Run both variants ``repeats`` times in ABBA order, so a steady drift favours neither."""
        for attempt in range(self.repeats):
            for variant in (first, second) if attempt % 2 == 0 else (second, first):
                variant(attempt)

    def _function_env(self, aws: AwsFixture, api_base_url: str) -> dict[str, str]:
        return {
            **aws.function_env(),
            "API_BASE_URL": api_base_url,
            "POWERTOOLS_SERVICE_NAME": "p1-retrain",
            "POWERTOOLS_METRICS_NAMESPACE": "P1RetrainBench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": "p1-retrain-bench",
        }

    def run(self, report: Report) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        try:
            self._run(report)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def _run(self, report: Report) -> None:
        emulator_args = ["emulator", "--job-seconds", "0.2", "--model", f"{MODEL}={API_KEY}"]
        emulator_args += ["--storage-dir", str(self.storage)]
        with (
            Service("moto", ["moto"], env=MOTO_IN_MEMORY) as moto,
            Service("emulator", emulator_args) as emulator,
        ):
            from p1_retrain.emulator import EmulatorAdmin

            admin = EmulatorAdmin(emulator.endpoint)
            admin.set_settings(validate=False)
            aws = AwsFixture(moto.endpoint).create({MODEL: API_KEY})
            digest = hashlib.sha256()

            def hashed() -> Iterator[bytes]:
                for chunk in data.csv_chunks(self.size):
                    digest.update(chunk)
                    yield chunk

            head = aws.put_chunks(hashed(), SOURCE_KEY)
            csv_sha256 = digest.hexdigest()
            api = PublicApi(emulator.endpoint, API_KEY)
            env = self._function_env(aws, emulator.endpoint)
            self._upload(report, aws, api, admin, head, csv_sha256, env)
            self._archive(report, aws, api, admin, head, env)
        self.details["moto_pid_separate"] = True
        report.details["transfer"] = self.details

    # -- upload --------------------------------------------------------------------------------------------

    def _check_upload(self, admin: Any, job_id: str, sha256: str, what: str) -> None:
        jobs = {job["id"]: job for job in admin.jobs()}
        job = jobs.get(job_id)
        if job is None:
            raise BenchError(f"{what}: the emulator has no job {job_id}")
        if job.get("upload_size") != self.size or job.get("upload_sha256") != sha256:
            raise BenchError(
                f"{what}: the emulator received {job.get('upload_size')} bytes "
                f"(sha256 {str(job.get('upload_sha256'))[:12]}…), expected {self.size} ({sha256[:12]}…)"
            )
        # Verified: drop the stored copy now, so gigabytes of dirty pages never queue up for the disk.
        for stored in (self.storage / "uploads").glob("**/*"):
            if stored.is_file():
                stored.unlink()

    def _upload(
        self,
        report: Report,
        aws: AwsFixture,
        api: PublicApi,
        admin: Any,
        head: dict[str, Any],
        sha256: str,
        env: dict[str, str],
    ) -> None:
        source_url = aws.presigned_get(SOURCE_KEY)
        ceiling = curlref.get_only("curl-s3-get", source_url, self.timeout)
        real, curl, read_all = Runs(self.size), Runs(self.size), Runs(self.size)
        memory = _memory("upload")

        def run_real(attempt: int) -> None:
            aws.forget_processed_objects()
            event = {
                "event": object_created_event(aws, SOURCE_KEY, head),
                "execution_id": _execution_id(f"u{attempt}"),
            }
            result = self._worker(
                f"upload-real-{attempt}",
                "upload-real",
                env,
                {"event": event, "memory_mb": memory, "bytes": self.size},
            )
            self._check_upload(admin, result["result"]["job"]["retrain_job_id"], sha256, "upload (real code)")
            real.add(result["seconds"], result)

        def run_curl(attempt: int) -> None:
            job_id, upload_url = api.new_job(Path(SOURCE_KEY).name)
            name = f"curl-upload-{attempt}"
            curl.add(curlref.upload(name, source_url, upload_url, self.size, self.timeout))
            self._check_upload(admin, job_id, sha256, "upload (curl reference)")

        self._alternate(run_real, run_curl)
        settings = {
            "api_base_url": api.base_url,
            "api_key": API_KEY,
            "bucket": aws.bucket,
            "key": SOURCE_KEY,
            "filename": Path(SOURCE_KEY).name,
            "bytes": self.size,
        }
        result = self._worker("upload-read-all", "upload-read-all", aws.function_env(), settings)
        self._check_upload(admin, result["result"]["retrain_job_id"], sha256, "upload (read all, then PUT)")
        read_all.add(result["seconds"], result)

        report.add(
            "upload_peak_rss_mib",
            max(real.peaks),
            at_most(RSS_LIMIT_MIB),
            "fresh process running functions/upload/app.py lambda_handler",
        )
        report.add("upload_throughput_ratio_vs_curl", real.mib_per_s / curl.mib_per_s, at_least(RATIO_TARGET))
        report.add("upload_throughput_mib_s", round(real.mib_per_s, 1))
        report.add("upload_curl_throughput_mib_s", round(curl.mib_per_s, 1), note="curl GET | curl PUT")
        report.add(
            "upload_read_all_then_put_peak_rss_mib",
            max(read_all.peaks),
            note="the upload URL page's example: read all, then PUT",
        )
        report.add("upload_read_all_then_put_throughput_ratio_vs_curl", read_all.mib_per_s / curl.mib_per_s)
        report.add(
            "upload_source_ceiling_mib_s", round(self.size / MIB / ceiling, 1), note="curl GET > /dev/null"
        )
        self.details["upload"] = {
            "bytes": self.size,
            "lambda_memory_mb": memory,
            "real": real.summary(),
            "curl": curl.summary(),
            "read_all_then_put": read_all.summary(),
            "source_get_only_seconds": round(ceiling, 3),
        }

    # -- archive --------------------------------------------------------------------------------------------

    def _check_archive(self, aws: AwsFixture, key: str, local: Path, what: str) -> None:
        size = local.stat().st_size
        stored = aws.size(key)
        if stored != size:
            raise BenchError(f"{what}: {key} has {stored} bytes, expected {size}")
        window = 64 * 1024
        with local.open("rb") as original:
            for start in (0, size // 3, size // 2 + 12345, max(0, size - window)):
                original.seek(start)
                expected = original.read(window)
                if aws.read_range(key, start, len(expected)) != expected:
                    raise BenchError(f"{what}: {key} differs from the results file at byte {start}")
        aws.delete_all_versions(key)

    def _archive(
        self,
        report: Report,
        aws: AwsFixture,
        api: PublicApi,
        admin: Any,
        head: dict[str, Any],
        env: dict[str, str],
    ) -> None:
        results = self.work / "results.zip"
        zip_size = data.write_results_zip(results, self.size)
        pieces = part_size()
        real, curl = Runs(zip_size), Runs(zip_size)
        memory = _memory("archive")

        def finished_job(name: str) -> str:
            job_id = api.uploaded_job(f"{name}.csv", data.small_csv())
            admin.set_result_file(job_id, str(results))
            admin.wait_job(job_id, "job_finished", timeout=60)
            return job_id

        def run_real(attempt: int) -> None:
            job_id = finished_job(f"archive-real-{attempt}")
            event = archive_event(aws, head, job_id, f"a{attempt}")
            result = self._worker(
                f"archive-real-{attempt}",
                "archive-real",
                env,
                {"event": event, "memory_mb": memory, "bytes": zip_size},
            )
            self._check_archive(aws, result["result"]["result_key"], results, "archive (real code)")
            real.add(result["seconds"], result)

        def run_curl(attempt: int) -> None:
            job_id = finished_job(f"archive-curl-{attempt}")
            download_url = api.status(job_id)["download_url"]
            key = f"bench/curl/{job_id}/results.zip"
            name = f"curl-archive-{attempt}"
            curl.add(curlref.archive(name, download_url, aws, key, zip_size, pieces, self.timeout))
            self._check_archive(aws, key, results, "archive (curl reference)")

        ceiling = curlref.get_only(
            "curl-emulator-get", api.status(finished_job("archive-ceiling"))["download_url"], self.timeout
        )
        self._alternate(run_real, run_curl)

        report.add(
            "archive_peak_rss_mib",
            max(real.peaks),
            at_most(RSS_LIMIT_MIB),
            "fresh process running functions/archive/app.py lambda_handler",
        )
        report.add(
            "archive_throughput_ratio_vs_curl", real.mib_per_s / curl.mib_per_s, at_least(RATIO_TARGET)
        )
        report.add("archive_throughput_mib_s", round(real.mib_per_s, 1))
        report.add(
            "archive_curl_throughput_mib_s",
            round(curl.mib_per_s, 1),
            note="curl GET | split | curl PUT parts",
        )
        report.add(
            "archive_source_ceiling_mib_s", round(zip_size / MIB / ceiling, 1), note="curl GET > /dev/null"
        )
        report.notes.append(
            f"Archive: the download alone runs at {zip_size / MIB / ceiling:.0f} MiB/s; curl's multipart "
            f"upload of the same stream into moto reaches {curl.mib_per_s:.0f} MiB/s, the code "
            f"{real.mib_per_s:.0f} MiB/s: the S3 side bounds both (moto hashes and stores every part)."
        )
        self.details["archive"] = {
            "bytes": zip_size,
            "part_size": pieces,
            "lambda_memory_mb": memory,
            "real": real.summary(),
            "curl": curl.summary(),
            "source_get_only_seconds": round(ceiling, 3),
        }
