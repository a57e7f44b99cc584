"""Benchmark of separate worker processes sharing MariaDB (the local server on 127.0.0.1:3306).

    .venv/bin/python bench/bench_workers.py [--jobs 2000] [--workers 1,2,4]

1. symlink_copy (hard link) jobs per second with 1, 2 and 4 worker processes (4 threads each),
   from the first job's start to the last job's end as the database recorded them. The jobs are
   queued first (bulk POST /api/v1/jobs, no worker running), then the workers start.
2. API latency (GET one job, GET a page of jobs) with 1,000 jobs queued, beside an empty queue.
3. Seconds from kill -9 of the worker holding a copy to the job finishing on another worker.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cluster import FINAL, Cluster, drop_database, fresh_database, query  # noqa: E402

MIB = 1024 * 1024


def make_sources(cluster: Cluster, count: int) -> None:
    for index in range(count):
        path = cluster.storage / "links" / f"f{index}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        path.chmod(0o444)


def queue_links(cluster: Cluster, api: str, count: int, tag: str) -> list[str]:
    requests = []
    for start in range(0, count, 500):
        items = [
            {"method": "symlink_copy", "local_path_on_storage": f"links/f{index}", "relative_path": f"{tag}/f{index}"}
            for index in range(start, min(count, start + 500))
        ]
        requests.append(cluster.submit(api, f"bench{start // 500}", items)["request_id"])
    return requests


def jobs_per_second(base: Path, workers: int, count: int) -> float:
    name, url = fresh_database()
    cluster = Cluster(base / f"w{workers}", url, max_running_per_user=0)
    try:
        cluster.migrate()
        api = cluster.start_api()
        make_sources(cluster, count)
        requests = queue_links(cluster, api, count, "run")
        for _ in range(workers):
            cluster.start_worker(concurrency=4)
        for request_id in requests:
            assert cluster.wait_request(request_id, timeout=600)["state"] == "succeeded"
        ((first, last, done),) = query(
            name, "SELECT MIN(started_at), MAX(finished_at), COUNT(*) FROM staging_jobs WHERE status='succeeded'"
        )
        assert done == count
        return count / (last - first).total_seconds()
    finally:
        cluster.stop()
        drop_database(name)


def latencies(api: str, path: str, count: int) -> list[float]:
    with httpx.Client() as client:
        client.get(f"{api}{path}")
        times = []
        for _ in range(count):
            started = time.perf_counter()
            client.get(f"{api}{path}").raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def latency_with_queue(base: Path, queued: int, gets: int) -> dict[str, tuple[float, float]]:
    name, url = fresh_database()
    cluster = Cluster(base / "latency", url)
    try:
        cluster.migrate()
        api = cluster.start_api()
        make_sources(cluster, queued)
        first = queue_links(cluster, api, 1, "probe")
        job_id = httpx.get(f"{api}/api/v1/jobs", params={"request": first[0]}).json()["jobs"][0]["job_id"]
        empty = {
            "one job": latencies(api, f"/api/v1/jobs/{job_id}", gets),
            "page of 50": latencies(api, "/api/v1/jobs?limit=50", gets),
        }
        queue_links(cluster, api, queued, "queued")
        full = {
            "one job": latencies(api, f"/api/v1/jobs/{job_id}", gets),
            "page of 50": latencies(api, "/api/v1/jobs?limit=50", gets),
        }
        return {key: (p99(full[key]), p99(empty[key])) for key in full}
    finally:
        cluster.stop()
        drop_database(name)


def kill_to_finish(base: Path, rounds: int) -> list[float]:
    name, url = fresh_database()
    cluster = Cluster(base / "kill", url, max_bytes_per_second=16 * MIB, lease_seconds=2)
    times = []
    try:
        cluster.migrate()
        api = cluster.start_api()
        for _ in range(2):
            cluster.start_worker(concurrency=2)
        for number in range(rounds):
            cluster.source(f"k{number}.bin", os.urandom(24 * MIB))
            item = {"method": "local_copy", "local_path_on_storage": f"k{number}.bin", "relative_path": f"k{number}"}
            job_id = cluster.submit(api, "killer", [item])["items"][0]["job"]["job_id"]
            running = cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] > 0)
            victim = next(w for w in cluster.workers if f":{w.pid}:" in (running["worker_id"] or ""))
            killed = time.monotonic()
            victim.signal(signal.SIGKILL)
            victim.wait(10)
            cluster.workers.remove(victim)
            assert cluster.wait_for(job_id, FINAL, timeout=120)["status"] == "succeeded"
            times.append(time.monotonic() - killed)
            cluster.start_worker(concurrency=2)
    finally:
        cluster.stop()
        drop_database(name)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--queued", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="skao-bench-workers-"))
    rates = {workers: jobs_per_second(base, workers, args.jobs) for workers in map(int, args.workers.split(","))}
    latency = latency_with_queue(base, args.queued, args.gets)
    kills = kill_to_finish(base, args.kills)

    one = rates[min(rates)]
    print(f"\n| measure (MariaDB, {args.jobs} hard-link jobs, 4 threads a worker) | value | vs 1 worker |")
    print("|---|---|---|")
    for workers, rate in rates.items():
        print(f"| {workers} worker process(es) | {rate:.0f} jobs/s | {rate / one:.2f} |")
    print(f"\n| API p99 ({args.gets} sequential GETs) | {args.queued} jobs queued | empty queue | ratio |")
    print("|---|---|---|---|")
    for key, (full, empty) in latency.items():
        print(f"| {key} | {full * 1000:.1f} ms | {empty * 1000:.1f} ms | {full / empty:.2f} |")
    print("\n| kill -9 of the worker holding a copy -> job finished on another (lease 2 s) | seconds |")
    print("|---|---|")
    print(f"| median of {len(kills)} | {statistics.median(kills):.1f} (each: {', '.join(f'{k:.1f}' for k in kills)}) |")


if __name__ == "__main__":
    main()
