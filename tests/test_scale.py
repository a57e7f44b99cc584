"""Jobs at scale with real processes on real MariaDB (and PostgreSQL): exactly-once execution, crash recovery,
database restarts, cancellation, retries, idempotency, live events across replicas, fairness."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from cluster import (
    FINAL,
    Cluster,
    ThrowawayMariaDB,
    create_postgresql_database,
    drop_postgresql_database,
    fresh_database,
    query,
)
from conftest import leftovers

MIB = 1024 * 1024


def copy_item(source: str, relative: str, method: str = "local_copy") -> dict[str, str]:
    return {"method": method, "local_path_on_storage": source, "relative_path": relative}


def test_300_jobs_through_two_apis_and_three_workers_run_exactly_once(cluster_factory, database) -> None:  # type: ignore[no-untyped-def]
    run_300_jobs(cluster_factory(), lambda sql: query(database[0], sql))


def test_300_jobs_on_postgresql_run_exactly_once(tmp_path: Path) -> None:
    """The same on PostgreSQL: claims with SKIP LOCKED across worker processes, each job once."""
    name = f"skao_test_{uuid.uuid4().hex[:10]}"
    create_postgresql_database(name)
    cluster = Cluster(tmp_path, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        cluster.migrate()

        def pg_query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={name}") as connection:
                return [tuple(row) for row in connection.execute(sql).fetchall()]

        run_300_jobs(cluster, pg_query)
    finally:
        cluster.stop()
        drop_postgresql_database(name)


def run_300_jobs(cluster: Cluster, sql: Callable[[str], list[tuple[Any, ...]]]) -> None:
    apis = [cluster.start_api(), cluster.start_api()]
    for _ in range(3):
        cluster.start_worker(concurrency=4)
    contents = {f"f{index:03d}": os.urandom(2048) for index in range(300)}
    for name, data in contents.items():
        cluster.source(f"many/{name}", data)
    requests = []
    names = sorted(contents)
    for batch in range(6):  # 50 items a request, alternating between the two API replicas
        items = [copy_item(f"many/{name}", f"out/{name}") for name in names[batch * 50 : (batch + 1) * 50]]
        requests.append(cluster.submit(apis[batch % 2], f"user{batch % 3}", items)["request_id"])
    for request_id in requests:
        assert cluster.wait_request(request_id)["state"] == "succeeded"

    staged = {path.name: path.read_bytes() for path in cluster.users.glob("user*/out/*")}
    assert staged == contents
    assert leftovers(cluster.users) == []
    assert sql("SELECT status, COUNT(*), MAX(attempts) FROM staging_jobs GROUP BY status") == [("succeeded", 300, 1)]
    assert sql("SELECT outcome, COUNT(*), COUNT(DISTINCT job_id) FROM staging_attempts GROUP BY outcome") == [
        ("succeeded", 300, 300)
    ]
    workers = sql("SELECT COUNT(DISTINCT worker_id) FROM staging_jobs")[0][0]
    assert workers >= 2, "the jobs were shared between worker processes"
    metrics = httpx.get(f"{apis[1]}/metrics").text
    assert 'skao_staging_jobs{method="local_copy",state="succeeded"} 300.0' in metrics
    assert "skao_staging_queue_depth 0.0" in metrics


def test_kill_a_worker_mid_copy_the_job_finishes_elsewhere(cluster_factory, database) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(max_bytes_per_second=8 * MIB)
    api = cluster.start_api()
    for _ in range(2):
        cluster.start_worker(concurrency=2)
    for round_number in range(3):  # bounded loop: kill, recover, replace the killed worker
        data = os.urandom(12 * MIB)
        cluster.source(f"big{round_number}.bin", data)
        job_id = cluster.submit(api, "kim", [copy_item(f"big{round_number}.bin", f"big{round_number}.bin")])["items"][
            0
        ]["job"]["job_id"]
        running = cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] > 0)
        victim = next(worker for worker in cluster.workers if f":{worker.pid}:" in (running["worker_id"] or ""))
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        cluster.workers.remove(victim)
        done = cluster.wait_for(job_id, FINAL, timeout=60)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert (cluster.users / "kim" / f"big{round_number}.bin").read_bytes() == data
        assert leftovers(cluster.users) == []
        outcomes = [
            row[0]
            for row in query(database[0], f"SELECT outcome FROM staging_attempts WHERE job_id={job_id} ORDER BY id")
        ]
        assert outcomes == ["interrupted", "succeeded"]
        cluster.start_worker(concurrency=2)


def test_sigterm_hands_a_running_job_back(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(max_bytes_per_second=4 * MIB)
    api = cluster.start_api()
    first = cluster.start_worker(concurrency=1)
    data = os.urandom(16 * MIB)
    cluster.source("long.bin", data)
    job_id = cluster.submit(api, "sam", [copy_item("long.bin", "long.bin")])["items"][0]["job"]["job_id"]
    cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] > 0)
    first.signal(signal.SIGTERM)
    assert first.wait(30) == 0
    handed_back = cluster.job(job_id)
    assert handed_back["status"] == "queued" and handed_back["attempts"] == 0
    assert leftovers(cluster.users) == []
    cluster.start_worker(concurrency=1)
    done = cluster.wait_for(job_id, FINAL, timeout=60)
    assert done["status"] == "succeeded" and (cluster.users / "sam" / "long.bin").read_bytes() == data


def test_database_restart_while_jobs_run(tmp_path: Path) -> None:
    server = ThrowawayMariaDB(tmp_path / "mariadb")
    (tmp_path / "mariadb").mkdir()
    server.install()
    server.start()
    cluster = None
    try:
        name, url = fresh_database(port=server.port)
        cluster = Cluster(tmp_path / "cluster", url, max_bytes_per_second=2 * MIB, lease_seconds=10)
        cluster.migrate()
        api = cluster.start_api()
        for _ in range(2):
            cluster.start_worker(concurrency=4)
        contents = {f"r{index:02d}": os.urandom(MIB // 2) for index in range(40)}
        for file_name, data in contents.items():
            cluster.source(file_name, data)
        request_id = cluster.submit(api, "rita", [copy_item(name_, name_) for name_ in contents])["request_id"]
        deadline = time.monotonic() + 60
        while httpx.get(f"{api}/api/v1/requests/{request_id}").json()["counts"].get("succeeded", 0) < 4:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)
        server.stop()  # MariaDB goes away while copies run...
        time.sleep(3.0)
        server.start()  # ...and comes back; no process of ours is restarted
        assert cluster.wait_request(request_id, timeout=120)["state"] == "succeeded"
        assert {path.name: path.read_bytes() for path in (cluster.users / "rita").iterdir()} == contents
        rows = query(name, "SELECT status, COUNT(*) FROM staging_jobs GROUP BY status", port=server.port)
        assert rows == [("succeeded", 40)]
        successes = query(
            name,
            "SELECT job_id, COUNT(*) FROM staging_attempts WHERE outcome='succeeded' GROUP BY job_id",
            port=server.port,
        )
        assert len(successes) == 40 and {count for _, count in successes} == {1}, "no job recorded twice"
        assert httpx.get(f"{api}/readyz").status_code == 200
    finally:
        if cluster is not None:
            cluster.stop()
        server.stop()


def test_cancel_a_running_copy(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(max_bytes_per_second=4 * MIB)
    api = cluster.start_api()
    cluster.start_worker(concurrency=2)
    cluster.source("c.bin", os.urandom(32 * MIB))
    cluster.source("q.bin", b"queued")
    body = cluster.submit(api, "cat", [copy_item("c.bin", "c.bin")])
    job_id = body["items"][0]["job"]["job_id"]
    cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] > 0)
    asked = time.monotonic()
    assert httpx.delete(f"{api}/api/v1/jobs/{job_id}").status_code == 202
    done = cluster.wait_for(job_id, FINAL, timeout=10)
    stopped_after = time.monotonic() - asked
    assert done["status"] == "cancelled" and done["error_code"] == "job_cancelled"
    assert stopped_after < 3, f"the copy took {stopped_after:.1f}s to stop"
    assert not (cluster.users / "cat" / "c.bin").exists()
    assert leftovers(cluster.users) == []
    assert httpx.delete(f"{api}/api/v1/jobs/{job_id}").json()["code"] == "job_finished"
    summary = httpx.get(f"{api}/api/v1/requests/{body['request_id']}").json()
    assert summary["state"] == "cancelled" and summary["counts"] == {"cancelled": 1}


def test_cancel_a_queued_request(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    api = cluster.start_api()  # no worker yet: everything stays queued
    cluster.source("q.bin", b"q")
    body = cluster.submit(api, "quinn", [copy_item("q.bin", f"q{index}") for index in range(5)])
    state = httpx.delete(f"{api}/api/v1/requests/{body['request_id']}").json()
    assert state["counts"] == {"cancelled": 5}
    cluster.start_worker()
    time.sleep(1.0)
    assert not (cluster.users / "quinn").exists(), "cancelled jobs never start"


def test_transient_failure_is_retried_and_manual_retry(cluster_factory, database) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(max_bytes_per_second=4 * MIB)
    api = cluster.start_api()
    cluster.start_worker(concurrency=2)
    data = os.urandom(16 * MIB)
    cluster.source("shrinks.bin", data)
    job_id = cluster.submit(api, "tim", [copy_item("shrinks.bin", "shrinks.bin")])["items"][0]["job"]["job_id"]
    cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] > 0)
    os.truncate(cluster.storage / "shrinks.bin", 2 * MIB)  # the archive file changes under the copy
    done = cluster.wait_for(job_id, FINAL, timeout=60)
    assert done["status"] == "succeeded", done
    assert (cluster.users / "tim" / "shrinks.bin").read_bytes() == data[: 2 * MIB]
    attempts = httpx.get(f"{api}/api/v1/jobs/{job_id}/attempts").json()
    assert [(item["outcome"], item["error_code"]) for item in attempts] == [
        ("retry", "source_changed"),
        ("succeeded", None),
    ]

    missing = cluster.submit(api, "tim", [copy_item("later.bin", "later.bin")])["items"][0]
    assert missing["error"]["code"] == "source_not_found"
    cluster.source("later.bin", b"now it exists")
    retried = httpx.post(f"{api}/api/v1/jobs/{missing['job']['job_id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "queued"
    assert cluster.wait_for(missing["job"]["job_id"], FINAL)["status"] == "succeeded"
    assert httpx.post(f"{api}/api/v1/jobs/{job_id}/retry").json()["code"] == "job_finished"


def test_idempotent_resubmission(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory()
    api = cluster.start_api()
    other = cluster.start_api()
    cluster.source("i.bin", b"i")
    items = [copy_item("i.bin", "i1"), copy_item("i.bin", "i2"), copy_item("absent", "i3")]
    first = cluster.submit(api, "ida", items, key="submission-42")
    again = cluster.submit(other, "ida", items, key="submission-42")
    assert again["request_id"] == first["request_id"]
    assert [item["job"]["job_id"] for item in again["items"]] == [item["job"]["job_id"] for item in first["items"]]
    assert again["items"][2]["error"]["code"] == "source_not_found"
    page = httpx.get(f"{api}/api/v1/jobs", params={"request": first["request_id"]}).json()
    assert page["total"] == 3
    someone_else = cluster.submit(api, "bob", items, key="submission-42")
    assert someone_else["request_id"] != first["request_id"]


def test_events_from_a_second_api_process(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(max_bytes_per_second=8 * MIB)
    submitter, watcher = cluster.start_api(), cluster.start_api()
    cluster.start_worker(concurrency=1)
    cluster.source("e.bin", os.urandom(16 * MIB))
    job_id = cluster.submit(submitter, "eve", [copy_item("e.bin", "e.bin")])["items"][0]["job"]["job_id"]
    events = []
    with httpx.stream("GET", f"{watcher}/api/v1/jobs/{job_id}/events", timeout=60) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    states = [event["status"] for event in events]
    assert states[-1] == "succeeded" and "running" in states
    assert any(0 < event["bytes_done"] < 16 * MIB for event in events), "progress was streamed"

    seen: list[dict[str, object]] = []

    def listen() -> None:
        with httpx.stream("GET", f"{watcher}/api/v1/events", params={"username": "eve"}, timeout=30) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:]))
                    if seen[-1]["status"] == "succeeded" and seen[-1]["relative_path"] == "e2.bin":
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(1.0)
    cluster.source("e2.bin", b"second")
    cluster.submit(submitter, "eve", [copy_item("e2.bin", "e2.bin")])
    listener.join(30)
    assert seen and seen[-1]["status"] == "succeeded" and seen[-1]["relative_path"] == "e2.bin"
    assert {event["username"] for event in seen} == {"eve"}


def test_per_user_limit_lets_others_through(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster: Cluster = cluster_factory(max_running_per_user=1, max_bytes_per_second=8 * MIB)
    api = cluster.start_api()
    for _ in range(2):
        cluster.start_worker(concurrency=4)
    cluster.source("u.bin", os.urandom(4 * MIB))
    heavy = cluster.submit(api, "heavy", [copy_item("u.bin", f"h{index}") for index in range(6)])
    light = cluster.submit(api, "light", [copy_item("u.bin", "l0")])
    light_id = light["items"][0]["job"]["job_id"]
    most_running = Counter[str]()
    light_done_while_heavy_active = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = httpx.get(f"{api}/api/v1/jobs", params={"status": "running", "limit": 100}).json()["jobs"]
        counts = Counter(job["username"] for job in running)
        for user, count in counts.items():
            most_running[user] = max(most_running[user], count)
        heavy_state = httpx.get(f"{api}/api/v1/requests/{heavy['request_id']}").json()["state"]
        if cluster.job(light_id)["status"] == "succeeded" and heavy_state == "active":
            light_done_while_heavy_active = True
        if heavy_state != "active":
            break
        time.sleep(0.05)
    assert most_running["heavy"] == 1
    assert light_done_while_heavy_active, "the light user's job did not wait behind the heavy request"
