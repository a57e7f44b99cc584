"""One process's staging machinery, assembled in one place for ``serve`` and ``worker``.

    jobs store ─ executor (claims, runs, records) ─ worker pool (threads) ─ heartbeat (leases)
                     ├── service (accepts requests; the routes' only entry)
                     ├── reaper (expired data; with a worker pool; one process at a time acts)
                     ├── notifier (ended requests, coming expiries: e-mail, webhook; as the reaper)
                     ├── replication watch (jobs waiting for a DID's replica; with Rucio only)
                     └── change watch, PostgreSQL listener (what other processes did: ``wakeups``)

Two hooks connect them: ``jobs_queued`` (wakes idle worker threads) and ``job_ended`` (wakes API
requests waiting for a job). Both fire for what this process did, and for what other processes did
as the change watch and the PostgreSQL listener learn it.
"""

from __future__ import annotations

from .config import Settings
from .db import Database, JobStore, NoticeStore
from .execution import Executor, new_process_id
from .hooks import Hook
from .methods import MethodRegistry
from .notifications import Notifier
from .paths import StorageRoots
from .reaper import Reaper, Releaser
from .replication import ReplicationWatch
from .service import StagingService
from .sources import Sources
from .wakeups import ChangeWatch, PostgresListener
from .worker import Heartbeat, Worker


class Runtime:
    """Service, executor, worker pool (``threads`` > 0) and heartbeat of one process, started and stopped together.

    ``sources`` defaults to the site's source kinds (``Sources.of_site``).
    """

    def __init__(
        self, settings: Settings, db: Database, *, role: str, threads: int, sources: Sources | None = None
    ) -> None:
        self.settings, self.db = settings, db
        self.jobs_queued: Hook[int] = Hook("jobs queued")
        self.job_ended: Hook[int] = Hook("job ended")
        jobs = JobStore(db)
        roots = StorageRoots(settings.storage_roots, settings.group_storage_roots)
        sources = sources or Sources.of_site(roots, settings)
        methods = MethodRegistry(settings)
        self.executor = Executor(settings, jobs, methods, sources, new_process_id(role), self.job_ended)
        self.worker = Worker(self.executor, threads) if threads > 0 else None
        releaser = Releaser(settings, jobs, methods)
        self.reaper = Reaper(releaser, self.executor.process_id) if self.worker is not None else None
        notices = NoticeStore(db)
        self.notifier = Notifier(settings, jobs, notices, self.executor.process_id) if self.worker is not None else None
        if self.worker is not None:
            self.jobs_queued.connect(self.worker.wake)
        self.heartbeat = Heartbeat(self.executor, settings, self.jobs_queued)
        self.replication = (
            ReplicationWatch(settings, jobs, sources.dids().catalogue, self.jobs_queued) if sources.has_dids else None
        )
        self.changes = ChangeWatch(
            jobs,
            settings.poll_seconds,
            fast=db.dialect == "mysql",
            jobs_queued=self.jobs_queued,
            job_ended=self.job_ended,
            idle_threads=self.worker.idle_threads if self.worker is not None else None,
        )
        self.listener = PostgresListener(db.url, self.jobs_queued, self.job_ended) if db.notifies else None
        self.service = StagingService(
            settings, jobs, roots, self.executor, self.worker, self.jobs_queued, releaser, notices
        )

    def start(self) -> None:
        if self.worker is not None:
            self.worker.start()
        self.changes.start()
        if self.listener is not None:
            self.listener.start()
        self.heartbeat.start()
        if self.reaper is not None:
            self.reaper.start()
        if self.notifier is not None:
            self.notifier.start()
        if self.replication is not None:
            self.replication.start()

    def stop(self) -> None:
        """Finish or hand back running jobs, stop beating, close the database."""
        if self.worker is not None:
            self.worker.stop(self.settings.shutdown_grace_seconds)
        self.changes.stop()
        if self.listener is not None:
            self.listener.stop()
        self.heartbeat.stop()
        if self.reaper is not None:
            self.reaper.stop()
        if self.notifier is not None:
            self.notifier.stop()
        if self.replication is not None:
            self.replication.stop()
            self.replication.catalogue.close()
        self.db.dispose()
