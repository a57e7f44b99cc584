"""How live is the web interface, and what do open event streams cost?

    .venv/bin/python bench/bench_events.py [--jobs 60] [--streams 200]

1. Latency of job changes over Server-Sent Events, against polling.
An API process (embedded worker, SQLite) runs hard-link jobs submitted one at a time, 100 ms apart.
Two clients watch at once, as the Jobs view would:
- the event stream ``GET /api/v1/events`` (what the frontend uses);
- the baseline, a client polling ``GET /api/v1/jobs`` every 0.5 s (the stream's own poll interval).
For each job, latency = the moment a client first sees it ``succeeded`` minus the moment the
submitting client got the job id back.
2. CPU of the API process over 10 s with 0, 1 and ``--streams`` idle ``/api/v1/events`` streams open
   (every open Jobs view holds one), read from /proc. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from cluster import Cluster  # noqa: E402

POLL_SECONDS = 0.5  # the baseline client polls as often as the event streams used to


def watch_events(api: str, seen: dict[int, float], stop: threading.Event) -> None:
    with httpx.stream("GET", f"{api}/api/v1/events", timeout=None) as response:
        for line in response.iter_lines():
            if stop.is_set():
                return
            if line.startswith("data: "):
                job = json.loads(line[6:])
                if job["status"] == "succeeded":
                    seen.setdefault(job["job_id"], time.monotonic())


def watch_polling(api: str, seen: dict[int, float], stop: threading.Event) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            page = client.get(f"{api}/api/v1/jobs", params={"status": "succeeded", "limit": 100}).json()
            now = time.monotonic()
            for job in page["jobs"]:
                seen.setdefault(job["job_id"], now)
            stop.wait(POLL_SECONDS)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def hold_streams(api: str, count: int, seconds: float, pid: int) -> float:
    """Share of one core the API process used while ``count`` idle event streams stayed open."""

    async def hold(client: httpx.AsyncClient, opened: asyncio.Event) -> None:
        async with client.stream("GET", f"{api}/api/v1/events", params={"username": "nobody"}) as response:
            assert response.status_code == 200
            opened.set()
            async for _ in response.aiter_lines():
                pass

    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(timeout=None, limits=limits) as client:
        opened = [asyncio.Event() for _ in range(count)]
        tasks = [asyncio.create_task(hold(client, event)) for event in opened]
        await asyncio.gather(*(event.wait() for event in opened))
        await asyncio.sleep(1.0)
        before, start = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        used = (cpu_seconds(pid) - before) / (time.monotonic() - start)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return used


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        cluster = Cluster(base, f"sqlite:///{base / 'staging.db'}")
        try:
            api = cluster.start_api(embedded_worker=True)
            for index in range(args.jobs):
                cluster.source(f"e/f{index}", b"x")
                (cluster.storage / "e" / f"f{index}").chmod(0o444)
            streamed: dict[int, float] = {}
            polled: dict[int, float] = {}
            stop = threading.Event()
            watchers = [
                threading.Thread(target=watch_events, args=(api, streamed, stop), daemon=True),
                threading.Thread(target=watch_polling, args=(api, polled, stop), daemon=True),
            ]
            for watcher in watchers:
                watcher.start()
            time.sleep(1.0)
            submitted: dict[int, float] = {}
            for index in range(args.jobs):
                item = {"method": "symlink_copy", "local_path_on_storage": f"e/f{index}", "relative_path": f"f{index}"}
                job_id = cluster.submit(api, "bench", [item])["items"][0]["job"]["job_id"]
                submitted[job_id] = time.monotonic()
                time.sleep(0.1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (
                set(submitted) <= set(streamed) and set(submitted) <= set(polled)
            ):
                time.sleep(0.1)
            stop.set()
            pid = cluster.processes[0].pid
            costs = [(count, asyncio.run(hold_streams(api, count, 10.0, pid))) for count in (0, 1, args.streams)]
        finally:
            cluster.stop()
    rows = []
    for name, seen in (("event stream /api/v1/events", streamed), (f"polling every {POLL_SECONDS} s", polled)):
        latencies = [(seen[job] - at) * 1000 for job, at in submitted.items() if job in seen]
        rows.append(
            f"| {name} | {len(latencies)}/{len(submitted)} | {statistics.median(latencies):.0f} | "
            f"{percentile(latencies, 0.95):.0f} | {max(latencies):.0f} |"
        )
    print(f"Job submitted -> seen succeeded by a watching client ({args.jobs} hard-link jobs, 100 ms apart)\n")
    print("| client | jobs seen | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nCPU of the API process (one core = 100%) while idle event streams are open, 10 s each\n")
    print("| open streams | API CPU |")
    print("|---|---|")
    for count, used in costs:
        print(f"| {count} | {used * 100:.1f}% |")


if __name__ == "__main__":
    main()
