"""Awaiting a job's end from the event loop, woken by workers in this process or by polling."""

from __future__ import annotations

import asyncio
import threading

from starlette.concurrency import run_in_threadpool

from ..db import FINAL_STATUSES, JobStore, StagingJob

POLL_SECONDS = 1.0  # finds jobs finished by another process


class JobWaiters:
    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self._lock = threading.Lock()
        self._waiting: dict[int, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]] = {}

    def notify(self, job_id: int) -> None:
        """Called from a worker thread when a job ended."""
        with self._lock:
            waiting = self._waiting.pop(job_id, [])
        for loop, future in waiting:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, job_id: int, timeout: float) -> StagingJob:
        """The job once it is final, or as it is when ``timeout`` runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            future: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiting.setdefault(job_id, []).append((loop, future))
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
