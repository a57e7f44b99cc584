"""Awaiting a job's end from the event loop, woken by the ``job_ended`` hook.

The hook fires for jobs this process ran, and for jobs that other processes ran as the change
watch (which follows ``waited``) or PostgreSQL's notifications tell. A slow re-read of the job
remains as a last resort.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool

from ..db import FINAL_STATUSES, JobStore, StagingJob

POLL_SECONDS = 1.0  # re-reads a waited job this often, should a wake-up be lost


class JobWaiters:
    def __init__(self, jobs: JobStore, waiting_started: Callable[[], None] = lambda: None) -> None:
        self.jobs, self.waiting_started = jobs, waiting_started
        self._lock = threading.Lock()
        self._waiting: dict[int, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def notify(self, job_id: int) -> None:
        """Called from a worker thread when a job ended."""
        with self._lock:
            waiting = self._waiting.pop(job_id, [])
        for loop, future in waiting:
            loop.call_soon_threadsafe(_resolve, future)

    def waited(self) -> list[int]:
        """The jobs that requests of this process wait for now."""
        with self._lock:
            return list(self._waiting)

    async def wait(self, job_id: int, timeout: float) -> StagingJob:
        """The job once it is final, or as it is when ``timeout`` runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiting.setdefault(job_id, []).append((loop, future))
            self.waiting_started()
            job = await run_in_threadpool(self.jobs.get, job_id)
            assert job is not None
            remaining = deadline - loop.time()
            if job.status in FINAL_STATUSES or remaining <= 0:
                self._forget(job_id, future)
                return job
            try:
                await asyncio.wait_for(future, min(remaining, POLL_SECONDS))
            except TimeoutError:
                self._forget(job_id, future)

    def _forget(self, job_id: int, future: asyncio.Future[None]) -> None:
        with self._lock:
            waiting = self._waiting.get(job_id, [])
            self._waiting[job_id] = [entry for entry in waiting if entry[1] is not future]
            if not self._waiting[job_id]:
                del self._waiting[job_id]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
