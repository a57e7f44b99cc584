"""Benchmark of the reaper: removing expired staged files, against ``rm -r`` of the same tree.

    .venv/bin/python bench/bench_reaper.py [--files 100000] [--probes 2000]

One ``serve`` (SQLite, embedded worker and reaper, STAGING_FSYNC=false so staging the tree is quick)
stages a folder of ``--files`` small files twice; a copy of the same tree made with ``cp -r`` is
removed with ``rm -r`` as the baseline. Each job's lifetime is then cut to one second and the reaper
removes it (its own duration is read from its log line): the first while the API is idle, the second
while a client reads one job again and again, whose latency is compared with the same reads while
the service is idle. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import Service

FILES_PER_FOLDER = 100


def make_tree(top: Path, files: int) -> None:
    for index in range(files):
        folder = top / f"d{index // FILES_PER_FOLDER:05d}"
        if index % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        (folder / f"f{index:07d}.dat").write_bytes(b"%07d\n" % index)


def latencies(client: httpx.Client, url: str, count: int, stop: threading.Event | None = None) -> list[float]:
    """Milliseconds of ``count`` reads of ``url`` (fewer if ``stop`` is set first)."""
    found = []
    for _ in range(count):
        if stop is not None and stop.is_set():
            break
        started = time.perf_counter()
        client.get(url).raise_for_status()
        found.append((time.perf_counter() - started) * 1000)
    return found


def remove_a_copy(tree: Path, copy: Path) -> tuple[float, float]:
    """Seconds of ``cp -r`` of the tree, and of ``rm -r`` of that copy, each after a ``sync``."""
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    subprocess.run(["cp", "-r", str(tree), str(copy)], check=True)
    copy_seconds = time.perf_counter() - started
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    subprocess.run(["rm", "-r", str(copy)], check=True)
    rm_seconds = time.perf_counter() - started
    subprocess.run(["sync"], check=True)
    return copy_seconds, rm_seconds


def expire(client: httpx.Client, job_url: str) -> None:
    """Cut the job's lifetime to a second and wait until the reaper released it."""
    client.patch(job_url, json={"lifetime": 1}).raise_for_status()
    deadline = time.monotonic() + 3600
    while not client.get(job_url).json()["released_at"] and time.monotonic() < deadline:
        time.sleep(0.05)


def reap_duration(log: str, job_id: object) -> float:
    line = re.search(rf"job {job_id} released \(expired\).*duration=([0-9.]+)s", log)
    assert line is not None, "the reaper's log line was not found"
    return float(line.group(1))


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=2000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-reaper-"))
    try:
        make_tree(base / "storage" / "tree", args.files)
        service = Service(base, fsync="false", reaper_interval_seconds="0.2")
        try:
            with httpx.Client(timeout=3600) as client:
                started = time.perf_counter()
                alone = service.stage(client, "local_copy", "bench", "tree", "alone")
                stage_seconds = time.perf_counter() - started
                loaded = service.stage(client, "local_copy", "bench", "tree", "loaded")
                job_url = f"{service.url}/api/v1/jobs/{loaded['job_id']}"
                idle = latencies(client, job_url, args.probes)
                # the baseline in the same state as the reaper: after the staging, written back to disk
                copy_seconds, rm_seconds = remove_a_copy(base / "storage" / "tree", base / "baseline")
                expire(client, f"{service.url}/api/v1/jobs/{alone['job_id']}")
                stop = threading.Event()
                during: list[float] = []
                probe = threading.Thread(target=lambda: during.extend(latencies(client, job_url, 10**7, stop)))
                probe.start()
                expire(client, job_url)
                stop.set()
                probe.join()
        finally:
            service.stop()
        reap_alone, reap_loaded = (reap_duration(service.log(), job["job_id"]) for job in (alone, loaded))
        assert not any((base / "users" / "bench" / name).exists() for name in ("alone", "loaded"))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    files = args.files
    folders = files // FILES_PER_FOLDER
    print(f"\n{files} files of 8 bytes in {folders} folders, staged by the service in {stage_seconds:.1f} s")
    print(f"(cp -r of the same tree: {copy_seconds:.1f} s)\n")
    print("| measure | service | baseline (same run) | ratio |")
    print("|---|---|---|---|")
    for label, seconds in (("API idle", reap_alone), ("API read without pause", reap_loaded)):
        print(
            f"| removing the expired tree ({label}), files/s | reaper {files / seconds:,.0f} ({seconds:.2f} s) "
            f"| `rm -r` {files / rm_seconds:,.0f} ({rm_seconds:.2f} s) | {rm_seconds / seconds:.2f} |"
        )
    print(
        f"| GET one job while it reaps, p50 / p99 ms ({len(during)} reads) | {statistics.median(during):.1f} / "
        f"{p99(during):.1f} | idle: {statistics.median(idle):.1f} / {p99(idle):.1f} | {p99(during) / p99(idle):.2f} |"
    )


if __name__ == "__main__":
    main()
