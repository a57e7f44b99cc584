"""Wake-ups across processes, against the real databases: PostgreSQL's notifications and the change
watch that MariaDB uses. Two ``Database`` objects stand for two processes sharing one database."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cluster import create_postgresql_database, drop_database, drop_postgresql_database, fresh_database
from skao_staging.db import Database, JobStatus, JobStore, StagingJob, upgrade
from skao_staging.hooks import Hook
from skao_staging.wakeups import ChangeWatch, PostgresListener


class Heard:
    """The values a hook was called with, in order."""

    def __init__(self, name: str) -> None:
        self.hook: Hook[int] = Hook(name)
        self.values: queue.Queue[int] = queue.Queue()
        self.hook.connect(self.values.put)

    def next(self, timeout: float = 10) -> int:
        return self.values.get(timeout=timeout)

    def until(self, wanted: int, timeout: float = 10) -> None:
        """Wait until the hook is called with ``wanted`` (other values may come first)."""
        while self.next(timeout) != wanted:
            pass

    def drain(self) -> None:
        while not self.values.empty():
            self.values.get_nowait()


def queue_job(jobs: JobStore, name: str) -> StagingJob:
    return jobs.create(
        status=JobStatus.QUEUED, username="ada", method="local_copy", local_path_on_storage=name,
        relative_path=name, request_id=str(uuid.uuid4()), item_index=0,
    )  # fmt: skip


def migrated(url: str) -> str:
    db = Database(url)
    upgrade(db)
    db.dispose()
    return url


@pytest.fixture
def postgresql_database() -> Iterator[str]:
    """A database of this test's own: no other service's workers claim its jobs."""
    name = f"skao_test_{uuid.uuid4().hex[:10]}"
    create_postgresql_database(name)
    url = migrated(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        yield url
    finally:
        drop_postgresql_database(name)


@pytest.fixture
def mariadb_database() -> Iterator[str]:
    name, url = fresh_database()
    migrated(url)
    try:
        yield url
    finally:
        drop_database(name)


def terminate_listeners(database: str) -> int:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN%%'",
            (database,),
        ).fetchall()
    return len(rows)


def test_postgresql_notifications_reach_another_process(postgresql_database: str) -> None:
    queued, ended = Heard("jobs queued"), Heard("job ended")
    listener = PostgresListener(postgresql_database, queued.hook, ended.hook)
    listener.start()
    other = Database(postgresql_database)
    jobs = JobStore(other)
    try:
        assert listener.listening.wait(10)
        assert queued.next() == 1  # on connecting: look for what was queued while nobody listened
        first = queue_job(jobs, "one")
        assert queued.next() == 1
        assert jobs.claim_next("elsewhere") is not None
        assert jobs.finish(first.id, "elsewhere", JobStatus.SUCCEEDED, attempt=1)
        assert ended.next() == first.id

        second = queue_job(jobs, "two")
        queued.until(1)
        jobs.cancel([second.id])
        assert ended.next() == second.id

        assert terminate_listeners(postgresql_database.rsplit("/", 1)[1]) == 1
        queued.next()  # the listener connected again (and looks for what it may have missed)
        queued.drain()
        third = queue_job(jobs, "three")
        assert queued.next() == 1
        assert jobs.retry(third.id) is False  # not failed: nothing announced
        with pytest.raises(queue.Empty):
            queued.next(timeout=1)
    finally:
        listener.stop()
        other.dispose()
    assert not listener.listening.is_set()


def test_change_watch_on_mariadb_sees_what_other_processes_did(mariadb_database: str) -> None:
    queued, ended = Heard("jobs queued"), Heard("job ended")
    here, elsewhere = Database(mariadb_database), Database(mariadb_database)
    waited: list[int] = []
    watch = ChangeWatch(
        JobStore(here), 0.2, fast=True, jobs_queued=queued.hook, job_ended=ended.hook, idle_threads=lambda: 1
    )
    watch.follow(lambda: list(waited))
    jobs = JobStore(elsewhere)
    watch.start()
    try:
        queued.next()  # the first look
        job = queue_job(jobs, "one")
        queued.next()
        waited.append(job.id)
        watch.poke()
        with pytest.raises(queue.Empty):
            ended.next(timeout=0.5)  # queued, not ended
        assert jobs.claim_next("elsewhere") is not None
        assert jobs.finish(job.id, "elsewhere", JobStatus.FAILED, attempt=1, error_code="x", error_reason="y")
        assert ended.next() == job.id
    finally:
        watch.stop()
        here.dispose()
        elsewhere.dispose()


def test_the_idle_watch_of_a_process_without_workers_or_waiters_does_not_query(tmp_path: Path) -> None:
    """An API replica with nobody waiting leaves the database alone."""
    asked: list[str] = []

    class CountingStore(JobStore):
        def last_change(self):  # type: ignore[no-untyped-def]
            asked.append("last_change")
            return super().last_change()

        def ended_among(self, job_ids):  # type: ignore[no-untyped-def]
            asked.append("ended_among")
            return super().ended_among(job_ids)

    db = Database(f"sqlite:///{tmp_path}/jobs.db")
    upgrade(db)
    watch = ChangeWatch(
        CountingStore(db), 0.05, fast=True, jobs_queued=Hook("q"), job_ended=Hook("e"), idle_threads=None
    )
    watch.start()
    try:
        time.sleep(0.5)
        assert asked == []
        waited = [queue_job(JobStore(db), "one").id]
        watch.follow(lambda: waited)
        watch.poke()
        time.sleep(0.5)
        assert "ended_among" in asked and "last_change" not in asked
    finally:
        watch.stop()
        db.dispose()
