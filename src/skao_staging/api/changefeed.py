"""Job changes read from the database once per API process and handed to every open event stream.

Any worker process may change a job, so changes are read from the database (no broker). One poll
serves all the streams of this process: N open Jobs views cost one query per interval, not N. The
feed polls only while someone listens.

Workers stamp ``updated_at`` before they commit, so a change may become visible after a later one:
the feed re-reads the last LAG_SECONDS at every poll and skips what it has already delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from ..db import JobStore, StagingJob, utcnow
from ..logs import get_logger

log = get_logger("api.changefeed")
POLL_SECONDS = 0.25  # one query per process per interval, whatever the number of streams
LAG_SECONDS = 1.0
PAGE = 500
MAX_PAGES = 10  # rows read in one poll at most PAGE * MAX_PAGES; the rest next time
# Changes held for one slow client before its stream is ended (it reconnects and reloads): two
# polls' worth, since one request's bulk insert or cancellation is a burst of up to 10,000 changes.
QUEUE_LIMIT = 2 * PAGE * MAX_PAGES


class Lagging(Exception):
    """A subscriber fell QUEUE_LIMIT changes behind; its stream ends and the client reconnects."""


@dataclass(eq=False)
class Subscription:
    username: str | None
    job_id: int | None
    queue: asyncio.Queue[StagingJob | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))

    def wants(self, job: StagingJob) -> bool:
        return (self.username is None or job.username == self.username) and (
            self.job_id is None or job.id == self.job_id
        )

    def offer(self, job: StagingJob) -> bool:
        """Queue a change; False when the subscriber is too far behind (it is then told to stop)."""
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.queue.get_nowait()
            self.queue.put_nowait(None)  # the marker: the consumer raises Lagging
            return False
        return True

    async def next(self, timeout: float) -> StagingJob | None:
        """The next change, or None after ``timeout`` seconds without one."""
        try:
            job = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None
        if job is None:
            raise Lagging()
        return job


class ChangeFeed:
    def __init__(self, jobs: JobStore, interval: float = POLL_SECONDS) -> None:
        self.jobs = jobs
        self.interval = interval
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def subscribe(self, username: str | None = None, job_id: int | None = None) -> AsyncIterator[Subscription]:
        """Changes from now on, of one user's jobs or one job (None: all)."""
        subscription = Subscription(username, job_id)
        self._subscribers.add(subscription)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll())
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _poll(self) -> None:
        cursor: tuple[datetime, int] = (utcnow() - timedelta(seconds=LAG_SECONDS), 0)
        delivered: set[tuple[int, datetime]] = set()
        while self._subscribers:
            try:
                rows, caught_up = await run_in_threadpool(self._read_from, cursor)
            except Exception:
                log.warning("reading job changes failed; trying again", exc_info=True)
                rows, caught_up = [], False
            for job in rows:
                if (job.id, job.updated_at) not in delivered:
                    delivered.add((job.id, job.updated_at))
                    self._deliver(job)
            if rows and not caught_up:
                cursor = (rows[-1].updated_at, rows[-1].id)  # a burst: continue where this poll stopped
            elif rows:
                cursor = (max(cursor[0], min(rows[-1].updated_at, utcnow() - timedelta(seconds=LAG_SECONDS))), 0)
            delivered = {key for key in delivered if key[1] >= cursor[0]}
            await asyncio.sleep(self.interval)

    def _read_from(self, cursor: tuple[datetime, int]) -> tuple[list[StagingJob], bool]:
        """Changes after ``cursor``, page by page; and whether they were all read."""
        rows: list[StagingJob] = []
        for _ in range(MAX_PAGES):
            page = self.jobs.changed_since(*cursor, limit=PAGE)
            rows += page
            if len(page) < PAGE:
                return rows, True
            cursor = (page[-1].updated_at, page[-1].id)
        return rows, False

    def _deliver(self, job: StagingJob) -> None:
        for subscription in [s for s in self._subscribers if s.wants(job)]:
            if not subscription.offer(job):
                self._subscribers.discard(subscription)
