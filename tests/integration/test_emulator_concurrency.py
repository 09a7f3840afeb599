"""Several clients at once: full flows in parallel, racing uploads to one job, and a clean stop under load."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from p1_retrain.emulator import EmulatorServer
from tests.integration.conftest import Api, make_table

CLIENTS = 8


def full_flow(base_url: str, api_key: str, index: int, admin) -> dict:
    api = Api(base_url, api_key)
    data = make_table(rows=150 + index, seed=index)
    job_id, upload_url = api.new_job(f"part-{index}.csv")
    assert api.put(upload_url, data).status_code == 200
    admin.wait_job(job_id, "job_finished", timeout=60)
    status = api.status(job_id).json()
    results = api.get(status["download_url"]).content
    assert api.switch(job_id).status_code == 200
    api.session.close()
    return {"job_id": job_id, "sha256": hashlib.sha256(data).hexdigest(), "results": results}


def test_parallel_clients_each_get_their_own_job(tmp_path):
    models = {f"model{i}": f"key-{i}" for i in range(4)}
    with EmulatorServer(models=models, job_seconds=0.2) as server:
        keys = list(models.values())
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [
                pool.submit(full_flow, server.base_url, keys[i % len(keys)], i, server.admin)
                for i in range(CLIENTS)
            ]
            outcomes = [future.result(timeout=120) for future in futures]
        jobs = {job["id"]: job for job in server.admin.jobs()}
        assert len(jobs) == CLIENTS == len({o["job_id"] for o in outcomes})
        for outcome in outcomes:
            job = jobs[outcome["job_id"]]
            assert job["upload_sha256"] == outcome["sha256"]
            assert job["status"] == "job_finished" and job["switch_count"] == 1
            assert outcome["results"] == server.admin.result_bytes(outcome["job_id"])
        assert len(server.admin.switches()) == CLIENTS
        assert sorted(e["status"] for e in server.admin.requests_log()) == [200] * (CLIENTS * 5)


def test_racing_uploads_to_one_job_store_exactly_one(emulator, api):
    job_id, upload_url = api.new_job()
    bodies = [make_table(rows=20_000, seed=i) for i in range(6)]
    start = threading.Barrier(len(bodies))

    def upload(body: bytes) -> int:
        session = requests.Session()
        session.trust_env = False
        start.wait(timeout=30)
        try:
            return session.put(upload_url, data=body, timeout=60).status_code
        finally:
            session.close()

    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = list(pool.map(upload, bodies))
    assert sorted(statuses) == [200] + [409] * (len(bodies) - 1)
    winner = bodies[statuses.index(200)]
    assert emulator.admin.job(job_id)["upload_sha256"] == hashlib.sha256(winner).hexdigest()
    assert len(emulator.admin.uploads()) == 1


def test_stop_closes_idle_keep_alive_connections():
    server = EmulatorServer(job_seconds=0.2).start()
    api = Api(server.base_url)
    assert api.upload_url().status_code == 200  # leaves a kept-alive connection open
    server.stop()
    with pytest.raises(requests.ConnectionError):
        api.upload_url()
    api.session.close()
