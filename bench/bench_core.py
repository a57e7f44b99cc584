"""Benchmark of the core service, measured in one run against baselines of the same run.

    .venv/bin/python bench/bench_core.py [--size-mib 512] [--runs 5] [--links 400]

1. local_copy of a large file through the API (verification on, flushed to disk: STAGING_FSYNC=true)
   against ``cp`` followed by ``sync`` of the same file; and with STAGING_FSYNC=false against ``cp``.
2. Latency of a cheap GET (one job read from the database) alone, and while two large copies run.
3. Hard-link stagings per second through the seed endpoint (SQLite, embedded worker), and of one
   bulk request of ``--bulk`` items against a raw ``os.link`` loop over the same files.
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cluster import free_port, wait_ready  # noqa: E402

BIN = Path(sys.executable).with_name("skao-staging")


class Service:
    def __init__(self, base: Path, **settings: str) -> None:
        self.base, self.port = base, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {key: value for key, value in os.environ.items() if not key.startswith("STAGING_")}
        env.update(
            STAGING_STORAGE_ROOTS=str(base / "storage"),
            STAGING_USER_AREAS=str(base / "users" / "{username}"),
            STAGING_DATABASE_URL=f"sqlite:///{base / 'staging.db'}",
            STAGING_LOG_FILE=str(base / "staging_service.log"),
        )
        env.update({f"STAGING_{key.upper()}": value for key, value in settings.items()})
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port)], env=env, stderr=subprocess.DEVNULL
        )
        wait_ready(self.url, self.process)

    def stage(self, client: httpx.Client, method: str, user: str, source: str, relative: str) -> dict[str, object]:
        response = client.post(
            f"{self.url}/stage_data",
            params={"method": method, "username": user},
            json={"local_path_on_storage": source, "relative_path": relative},
            timeout=600,
        )
        if response.is_error:
            raise RuntimeError(f"{response.status_code} {response.text}")
        body: dict[str, object] = response.json()
        return body

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)

    def log(self) -> str:
        return (self.base / "staging_service.log").read_text()


def timed(action: object) -> float:
    assert callable(action)
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_copy(service: Service, base: Path, runs: int) -> dict[str, float]:
    """Median seconds of: cp, cp + sync of the file, and the service's local_copy."""
    source = base / "storage" / "big.bin"
    times: dict[str, list[float]] = {"cp": [], "cp+sync": [], "api": []}
    with httpx.Client() as client:
        for run in range(runs):
            target = base / f"cp-{run}.bin"
            times["cp"].append(timed(lambda t=target: subprocess.run(["cp", str(source), str(t)], check=True)))
            target.unlink()
            times["cp+sync"].append(
                timed(lambda t=target: subprocess.run(f"cp {source} {t} && sync {t}", shell=True, check=True))
            )
            target.unlink()
            staged = f"c{run}.bin"
            times["api"].append(timed(lambda s=staged: service.stage(client, "local_copy", "bench", "big.bin", s)))
            (base / "users" / "bench" / staged).unlink()
    return {name: statistics.median(values) for name, values in times.items()}


def latencies(service: Service, job_id: int, count: int) -> list[float]:
    with httpx.Client() as client:
        client.get(f"{service.url}/api/v1/jobs/{job_id}")
        return [
            timed(lambda: client.get(f"{service.url}/api/v1/jobs/{job_id}").raise_for_status()) for _ in range(count)
        ]


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def bench_latency_under_copies(service: Service, base: Path, count: int) -> tuple[list[float], list[float]]:
    with httpx.Client() as client:
        job_id = int(service.stage(client, "local_copy", "lat", "big.bin", "warm.bin")["job_id"])
    quiet = latencies(service, job_id, count)
    stop = threading.Event()

    def copy_loop(worker: int) -> None:
        with httpx.Client() as client:
            run = 0
            while not stop.is_set():
                service.stage(client, "local_copy", f"load{worker}", "big.bin", f"x{run}.bin")
                (base / "users" / f"load{worker}" / f"x{run}.bin").unlink()
                run += 1

    threads = [threading.Thread(target=copy_loop, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    busy = latencies(service, job_id, count)
    stop.set()
    for thread in threads:
        thread.join()
    return quiet, busy


def bench_links(service: Service, base: Path, count: int, concurrency: int) -> float:
    for index in range(count):
        path = base / "storage" / "links" / f"f{index}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        path.chmod(0o444)
    clients = [httpx.Client() for _ in range(concurrency)]

    def one(index: int) -> None:
        body = service.stage(clients[index % concurrency], "symlink_copy", "linker", f"links/f{index}", f"l/f{index}")
        assert body["status"] == "succeeded", body

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return count / elapsed


def bench_bulk(service: Service, base: Path, count: int) -> tuple[float, float]:
    """Hard-link jobs per second of one bulk POST /api/v1/jobs of ``count`` items (from the POST to the
    request's end), and of a raw ``os.link`` loop over the same files (the baseline)."""
    sources = [base / "storage" / "bulk" / f"f{index}" for index in range(count)]
    sources[0].parent.mkdir(parents=True, exist_ok=True)
    for path in sources:
        path.write_bytes(b"x")
        path.chmod(0o444)
    items = [
        {"method": "symlink_copy", "local_path_on_storage": f"bulk/f{index}", "relative_path": f"bulk/f{index}"}
        for index in range(count)
    ]
    with httpx.Client(base_url=service.url, timeout=600) as client:
        started = time.perf_counter()
        response = client.post("/api/v1/jobs", json={"username": "bulk", "items": items})
        assert response.status_code == 202, response.text
        request_id = response.json()["request_id"]
        while (state := client.get(f"/api/v1/requests/{request_id}").json())["state"] == "active":
            time.sleep(0.25)  # each look summarises the whole request: a faster poll slows the run
        elapsed = time.perf_counter() - started
    assert state["state"] == "succeeded", state
    raw = base / "raw-links"
    raw.mkdir()
    started = time.perf_counter()
    for index, path in enumerate(sources):
        os.link(path, raw / f"f{index}")
    return count / elapsed, count / (time.perf_counter() - started)


def bench_get_rate(service: Service, path: str, count: int, concurrency: int) -> float:
    """Requests per second of a GET with the same clients: the framework's ceiling on this machine."""
    clients = [httpx.Client() for _ in range(concurrency)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: clients[i % concurrency].get(f"{service.url}{path}").raise_for_status(), range(count)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gets", type=int, default=400)
    parser.add_argument("--links", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bulk", type=int, default=10_000)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="skao-bench-"))
    (base / "storage").mkdir()
    with open(base / "storage" / "big.bin", "wb") as out:
        for _ in range(args.size_mib):
            out.write(os.urandom(1024 * 1024))
    unflushed = Service(base, fsync="false")
    try:
        without_fsync = bench_copy(unflushed, base, args.runs)
    finally:
        unflushed.stop()
    service = Service(base)
    try:
        with_fsync = bench_copy(service, base, args.runs)
        quiet, busy = bench_latency_under_copies(service, base, args.gets)
        links_per_second = bench_links(service, base, args.links, args.concurrency)
        bulk_rate, raw_link_rate = bench_bulk(service, base, args.bulk)
        health_rate = bench_get_rate(service, "/healthz", 2 * args.links, args.concurrency)
        job_read_rate = bench_get_rate(service, "/api/v1/jobs/1", 2 * args.links, args.concurrency)
    finally:
        service.stop()
        shutil.rmtree(base, ignore_errors=True)

    mib = args.size_mib
    print(f"\n| measure ({mib} MiB file, median of {args.runs}) | value | baseline | ratio |")
    print("|---|---|---|---|")
    for label, times, baseline in (
        ("local_copy via API, verified, STAGING_FSYNC=true vs `cp` + `sync FILE`", with_fsync, "cp+sync"),
        ("local_copy via API, verified, STAGING_FSYNC=false vs `cp`", without_fsync, "cp"),
    ):
        api_time, base_time = times["api"], times[baseline]
        print(
            f"| {label} | {api_time:.3f} s ({mib / api_time:.0f} MiB/s) "
            f"| {base_time:.3f} s ({mib / base_time:.0f} MiB/s) | {api_time / base_time:.2f} |"
        )
    flush_cost = with_fsync["api"] / without_fsync["api"]
    print(f"| cost of flushing: local_copy with / without STAGING_FSYNC | {flush_cost:.2f} | | |")
    print(
        f"| GET /api/v1/jobs/{{id}} p99 while 2 copies run ({args.gets} requests) | {p99(busy) * 1000:.1f} ms "
        f"| {p99(quiet) * 1000:.1f} ms idle | {p99(busy) / p99(quiet):.2f} |"
    )
    print(f"| same, p50 | {statistics.median(busy) * 1000:.1f} ms | {statistics.median(quiet) * 1000:.1f} ms idle | |")
    print(
        f"| symlink_copy stagings/s via POST /stage_data ({args.links} requests, {args.concurrency} clients, SQLite) "
        f"| {links_per_second:.0f}/s | {health_rate:.0f}/s GET /healthz | {links_per_second / health_rate:.2f} |"
    )
    print(f"| same clients, GET /api/v1/jobs/{{id}} (one row read) | {job_read_rate:.0f}/s | | |")
    print(
        f"| symlink_copy jobs/s, one POST /api/v1/jobs of {args.bulk} items to the request's end (SQLite) "
        f"| {bulk_rate:.0f}/s | {raw_link_rate:.0f}/s raw `os.link` loop | {bulk_rate / raw_link_rate:.3f} |"
    )


if __name__ == "__main__":
    main()
