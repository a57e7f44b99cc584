"""Batches: a worker thread claims the one-file jobs of a request together and stages them with one
flush of their data, one fence and one flush of their names, recording their ends in one transaction.
Each job still ends exactly as it would alone, on real processes and real databases."""

from __future__ import annotations

import errno
import os
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cluster import (
    Cluster,
    create_postgresql_database,
    drop_database,
    drop_postgresql_database,
    fresh_database,
    query,
)
from conftest import leftovers, make_settings
from skao_staging.db import Database, JobEnd, JobStatus, JobStore, StagingJob, upgrade
from skao_staging.runtime import Runtime
from test_integrity import first, syscalls, traced
from test_scale import copy_item


def adler(data: bytes) -> str:
    return f"adler32:{zlib.adler32(data) & 0xFFFFFFFF:08x}"


def test_a_request_of_small_files_is_staged_in_batches_each_job_once(
    cluster_factory: Callable[..., Cluster], database: tuple[str, str]
) -> None:
    cluster = cluster_factory(batch_jobs=16, max_running_per_user=0)
    api = cluster.start_api()
    cluster.start_worker(concurrency=2)
    contents = {f"f{index:02d}": os.urandom(3000 + index) for index in range(40)}
    for name, data in contents.items():
        cluster.source(f"small/{name}", data)
        (cluster.storage / "small" / name).chmod(0o444)
    copies = cluster.submit(api, "ada", [copy_item(f"small/{name}", f"c/{name}") for name in contents])
    links = cluster.submit(api, "ada", [copy_item(f"small/{name}", f"l/{name}", "symlink_copy") for name in contents])
    for request in (copies, links):
        assert cluster.wait_request(request["request_id"])["state"] == "succeeded"

    area = cluster.users / "ada"
    for name, data in contents.items():
        copy, link = area / "c" / name, area / "l" / name
        assert copy.read_bytes() == data and copy.stat().st_mode & 0o222 == 0
        assert link.stat().st_ino == (cluster.storage / "small" / name).stat().st_ino
    assert leftovers(cluster.users) == []
    sql = lambda text: query(database[0], text)  # noqa: E731
    assert sql("SELECT status, COUNT(*), MAX(attempts) FROM staging_jobs GROUP BY status") == [("succeeded", 80, 1)]
    assert sql("SELECT outcome, COUNT(*), COUNT(DISTINCT job_id) FROM staging_attempts GROUP BY outcome") == [
        ("succeeded", 80, 80)
    ]
    rows = sql(f"SELECT local_path_on_storage, checksum FROM staging_jobs WHERE request_id = '{copies['request_id']}'")
    assert {source: checksum for source, checksum in rows} == {f"small/{n}": adler(d) for n, d in contents.items()}
    # claimed in batches: a batch's jobs share the time of its claim (the first one has its own); two
    # threads claiming at once may cut each other's batches short, so only "far fewer claims than jobs"
    claims = sql("SELECT COUNT(DISTINCT started_at) FROM staging_jobs")[0][0]
    assert claims <= 80 / 4, f"{claims} claims for 80 jobs in batches of 16"
    log = (cluster.base / "staging_service.log").read_text()
    assert sum(" succeeded method=" in line for line in log.splitlines()) == 80, "one line per job"


def test_each_job_of_a_batch_ends_as_it_would_alone(
    cluster_factory: Callable[..., Cluster], database: tuple[str, str]
) -> None:
    cluster = cluster_factory(batch_jobs=64, max_running_per_user=0)
    api = cluster.start_api()
    data = {name: os.urandom(5000) for name in ("new", "same", "different", "vanishing", "cancelled", "last")}
    for name, content in data.items():
        cluster.source(f"mix/{name}", content)
    area = cluster.users / "ada" / "out"
    area.mkdir(parents=True)
    (area / "same").write_bytes(data["same"])
    (area / "different").write_bytes(b"the user's own file")
    request = cluster.submit(api, "ada", [copy_item(f"mix/{name}", f"out/{name}") for name in data])
    jobs = {name: item["job"]["job_id"] for name, item in zip(data, request["items"], strict=True)}
    (cluster.storage / "mix" / "vanishing").unlink()  # after it was accepted, before it runs
    assert httpx.delete(f"{api}/api/v1/jobs/{jobs['cancelled']}", timeout=30).status_code == 202
    cluster.start_worker(concurrency=1)  # the queue is complete: one thread claims it as one batch
    cluster.wait_request(request["request_id"])

    ended = {name: cluster.job(job_id) for name, job_id in jobs.items()}
    assert {name: job["status"] for name, job in ended.items()} == {
        "new": "succeeded",
        "same": "skipped",
        "different": "failed",
        "vanishing": "failed",
        "cancelled": "cancelled",
        "last": "succeeded",
    }
    assert ended["different"]["error_code"] == "destination_exists"
    assert ended["vanishing"]["error_code"] == "source_not_found"
    assert (area / "new").read_bytes() == data["new"] and (area / "last").read_bytes() == data["last"]
    assert (area / "different").read_bytes() == b"the user's own file"
    assert not (area / "vanishing").exists() and not (area / "cancelled").exists()
    assert leftovers(cluster.users) == []
    started = query(database[0], "SELECT COUNT(DISTINCT started_at) FROM staging_jobs WHERE attempts = 1")[0][0]
    assert started <= 2, "the five jobs that ran were claimed together"


def test_a_batch_flushes_its_data_before_any_name_and_its_names_before_it_ends(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    """The worker, traced by strace: a batch's temporaries are written unflushed, one ``syncfs``
    flushes their data before the first is linked into place, and another their names after the last."""
    cluster = cluster_factory(batch_jobs=8, max_running_per_user=0)
    api = cluster.start_api()
    names = [f"b{index}" for index in range(5)]
    for name in names:
        cluster.source(f"batch/{name}", os.urandom(2000))
    worker = cluster.start_worker(concurrency=1)
    trace = tmp_path / "worker.strace"
    with traced(worker.pid, trace, "fsync,fdatasync,syncfs,openat,link,linkat"):
        request = cluster.submit(api, "sam", [copy_item(f"batch/{name}", f"in/{name}") for name in names])
        assert cluster.wait_request(request["request_id"])["state"] == "succeeded"
    calls, area = syscalls(trace), cluster.users / "sam" / "in"
    created = [
        first(calls, 0, "openat(", f"<{area}>", ".part", "O_CREAT", f"-{item['job']['job_id']}-")
        for item in request["items"]
    ]
    data_flushed = first(calls, max(created), "syncfs(")
    links = [first(calls, data_flushed, "link", f'"{name}"') for name in names]
    first(calls, max(links), "syncfs(")
    assert not [call for call in calls if call.startswith("fsync(") and ".part" in call], "no file flushed alone"


# -- claims, in one process, on each database ------------------------------------------------------


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own, on each supported engine."""
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path}/jobs.db", lambda: None
    elif request.param == "mariadb":
        name, url = fresh_database()
        drop = lambda: drop_database(name)  # noqa: E731
    else:
        name = f"skao_test_{uuid.uuid4().hex[:10]}"
        create_postgresql_database(name)
        url, drop = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", lambda: drop_postgresql_database(name)
    db = Database(url)
    upgrade(db)
    db.dispose()
    try:
        yield url
    finally:
        drop()


def queue_jobs(
    jobs: JobStore, count: int, request_id: str, username: str = "ada", **fields: object
) -> list[StagingJob]:
    return jobs.create_many([
        {"status": JobStatus.QUEUED, "username": username, "method": "local_copy", "request_id": request_id,
         "local_path_on_storage": f"s/f{index}", "relative_path": f"out/f{index}", "item_index": index,
         "bytes_total": 100, **fields}
        for index in range(count)
    ])  # fmt: skip


def test_batch_claims_take_only_small_files_of_the_same_request_within_the_user_limit(database_url: str) -> None:
    db = Database(database_url)
    jobs = JobStore(db)
    try:
        queue_jobs(jobs, 6, "r1")
        queue_jobs(jobs, 3, "r2")
        large = queue_jobs(jobs, 2, "r3", bytes_total=10 * 1024 * 1024)
        first_job = jobs.claim_next("w1", max_running_per_user=4)
        assert first_job is not None and first_job.request_id == "r1"
        more = jobs.claim_batch(first_job, "w1", 63, 1024 * 1024, max_running_per_user=4)
        assert [job.request_id for job in more] == ["r1"] * 3, "the limit of 4 running jobs counts the first"
        assert all(job.status == JobStatus.RUNNING and job.worker_id == "w1" and job.attempts == 1 for job in more)
        assert jobs.running_count("ada") == 4
        unlimited = jobs.claim_batch(first_job, "w2", 63, 1024 * 1024)
        assert [job.request_id for job in unlimited] == ["r1", "r1"], "the rest of r1 only"
        assert jobs.claim_batch(large[0], "w3", 63, 1024 * 1024) == [], "large copies are not batched"
    finally:
        db.dispose()


def runtime_with_three_queued_copies(tmp_path: Path) -> Runtime:
    """A runtime without worker threads on its own SQLite, and three small copies of one request queued."""
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path}/jobs.db", batch_jobs=8, max_running_per_user=0)
    db = Database(settings.database_url)
    upgrade(db)
    runtime = Runtime(settings, db, role="test", threads=0)
    for index in range(3):
        source = settings.storage_roots[0] / "s" / f"f{index}"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(os.urandom(1000))
    queue_jobs(runtime.executor.jobs, 3, "r1")
    return runtime


def test_a_batch_job_taken_over_by_another_attempt_publishes_nothing(tmp_path: Path) -> None:
    runtime = runtime_with_three_queued_copies(tmp_path)
    db, executor, jobs = runtime.db, runtime.executor, runtime.executor.jobs
    claimed = executor.claim_next()
    assert claimed is not None
    batch = executor.claim_batch(claimed)
    assert len(batch) == 3
    with db.transaction() as connection:  # the second job's lease passed: another worker took it over
        connection.exec_driver_sql(
            f"UPDATE staging_jobs SET worker_id = 'other', attempts = 2 WHERE id = {batch[1].id}"
        )
    executor.execute_batch(batch)

    area = tmp_path / "users" / "ada" / "out"
    assert sorted(path.name for path in area.iterdir()) == ["f0", "f2"]
    taken = jobs.get(batch[1].id)
    assert taken is not None and (taken.status, taken.worker_id) == (JobStatus.RUNNING, "other")
    assert [_status(jobs, job) for job in (batch[0], batch[2])] == [JobStatus.SUCCEEDED] * 2
    db.dispose()


def _status(jobs: JobStore, job: StagingJob) -> JobStatus | None:
    row = jobs.get(job.id)
    return None if row is None else JobStatus(row.status)


def test_an_attempt_overtaken_by_a_later_attempt_in_the_same_process_records_nothing(database_url: str) -> None:
    """A frozen process's job is given back when its lease passes, and the same process (woken) may
    claim it again: then the first attempt's end must not count, only the second's (found by chaos)."""
    db = Database(database_url)
    jobs = JobStore(db)
    try:
        queue_jobs(jobs, 1, "r1")
        first_attempt = jobs.claim_next("w1")
        assert first_attempt is not None and first_attempt.attempts == 1
        time.sleep(0.01)
        assert jobs.requeue_expired(lease_seconds=0.001, max_attempts=5).requeued == [first_attempt.id]
        second_attempt = jobs.claim_next("w1")
        assert second_attempt is not None and second_attempt.attempts == 2

        assert not jobs.finish(first_attempt.id, "w1", JobStatus.SUCCEEDED, attempt=1)
        assert not jobs.requeue(first_attempt.id, "w1", attempt=1, delay=0, error_code="x", error_reason="y")
        assert jobs.finish_many("w1", [JobEnd(first_attempt.id, 1, JobStatus.SUCCEEDED, {})]) == [False]
        assert jobs.finish(first_attempt.id, "w1", JobStatus.SUCCEEDED, attempt=2)
        outcomes = [row["outcome"] for row in jobs.attempts_of(first_attempt.id)]
        assert outcomes.count("succeeded") == 1, outcomes
    finally:
        db.dispose()


def test_a_batch_whose_data_cannot_be_flushed_publishes_nothing_and_each_job_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails the flush (EIO from syncfs; simulated: no failing disk here) fails every job of
    the batch as a retryable io_error before any name points at unflushed data."""
    runtime = runtime_with_three_queued_copies(tmp_path)
    db, executor, jobs = runtime.db, runtime.executor, runtime.executor.jobs

    def failing_flush(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("skao_staging.methods.local.sync_filesystem", failing_flush)
    claimed = executor.claim_next()
    assert claimed is not None
    batch = executor.claim_batch(claimed)
    executor.execute_batch(batch)

    assert not list((tmp_path / "users" / "ada" / "out").iterdir()), "nothing published, no temporary left"
    for job in batch:
        row = jobs.get(job.id)
        assert row is not None and (row.status, row.error_code) == (JobStatus.QUEUED, "io_error")
    assert executor.active.ids() == []
    db.dispose()
