"""What is reported as staged is exactly the source's bytes, once: faults injected into real processes
(API and worker processes of ``skao-staging`` on a real MariaDB, real signals)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from cluster import FINAL, Cluster, query
from conftest import leftovers
from test_scale import copy_item

MIB = 1024 * 1024


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Overwrite a file's bytes without changing its size or inode, as an archive process might."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def test_a_source_rewritten_during_the_copy_is_never_published_torn(
    cluster_factory: Callable[..., Cluster], database: tuple[str, str]
) -> None:
    cluster = cluster_factory(max_bytes_per_second=4 * MIB)
    api = cluster.start_api()
    cluster.start_worker(concurrency=1)
    first, second = os.urandom(12 * MIB), os.urandom(12 * MIB)
    cluster.source("changing.bin", first)
    job_id = cluster.submit(api, "rita", [copy_item("changing.bin", "changing.bin")])["items"][0]["job"]["job_id"]
    cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] >= 2 * MIB)
    rewrite_in_place(cluster.storage / "changing.bin", second)
    done = cluster.wait_for(job_id, FINAL, timeout=60)
    assert done["status"] == "succeeded", done
    staged = (cluster.users / "rita" / "changing.bin").read_bytes()
    assert staged == second, "the published file must be one whole version of the source, never a mix"
    outcomes = [
        row[0]
        for row in query(database[0], f"SELECT error_code FROM staging_attempts WHERE job_id={job_id} ORDER BY id")
    ]
    assert outcomes[0] == "source_changed", outcomes
    assert leftovers(cluster.users) == []


def test_a_source_replaced_during_the_copy_is_detected(
    cluster_factory: Callable[..., Cluster], database: tuple[str, str]
) -> None:
    cluster = cluster_factory(max_bytes_per_second=4 * MIB, max_attempts=1)
    api = cluster.start_api()
    cluster.start_worker(concurrency=1)
    cluster.source("replaced.bin", os.urandom(12 * MIB))
    job_id = cluster.submit(api, "rex", [copy_item("replaced.bin", "replaced.bin")])["items"][0]["job"]["job_id"]
    cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] >= 2 * MIB)
    newer = cluster.storage / "replaced.new"
    newer.write_bytes(os.urandom(12 * MIB))
    newer.rename(cluster.storage / "replaced.bin")  # the path now names another file
    time.sleep(0.1)
    done = cluster.wait_for(job_id, FINAL, timeout=60)
    assert (done["status"], done["error_code"]) == ("failed", "source_changed"), done
    assert not (cluster.users / "rex" / "replaced.bin").exists()
    assert leftovers(cluster.users) == []


def test_a_frozen_attempt_that_lost_its_lease_publishes_nothing(cluster_factory: Callable[..., Cluster]) -> None:
    """SIGSTOP the worker copying a file until another worker has taken the job over, then SIGCONT it:
    the user's area never shows a half-written file, and the job ends once with the source's bytes."""
    cluster = cluster_factory(max_bytes_per_second=8 * MIB)
    api = cluster.start_api()
    workers = [cluster.start_worker(concurrency=1) for _ in range(2)]
    data = os.urandom(48 * MIB)
    cluster.source("frozen.bin", data)
    job_id = cluster.submit(api, "fred", [copy_item("frozen.bin", "frozen.bin")])["items"][0]["job"]["job_id"]
    running = cluster.wait_for(job_id, ("running",), bytes_done=lambda job: job["bytes_done"] >= 8 * MIB)
    frozen = next(worker for worker in workers if f":{worker.pid}:" in (running["worker_id"] or ""))
    frozen.signal(signal.SIGSTOP)
    try:
        cluster.wait_for(job_id, ("running",), timeout=30, attempts=lambda job: job["attempts"] == 2)
    finally:
        frozen.signal(signal.SIGCONT)
    destination = cluster.users / "fred" / "frozen.bin"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and cluster.job(job_id)["status"] not in FINAL:  # bounded watch
        if destination.exists():
            assert destination.stat().st_size == len(data), "a half-written file was published"
        time.sleep(0.05)
    done = cluster.wait_for(job_id, FINAL, timeout=10)
    assert done["status"] == "succeeded", done
    assert destination.read_bytes() == data
    time.sleep(7)  # the resumed attempt copies on (throttled) and then finds it lost the job
    assert destination.read_bytes() == data
    assert leftovers(cluster.users) == []
    assert cluster.job(job_id)["status"] == "succeeded"
