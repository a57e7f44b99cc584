"""Workers: threads that claim queued jobs from the database and run them, and the heartbeat.

The database is the queue, so an embedded worker (inside ``serve``) and separate worker processes
work the same way. The heartbeat renews the leases of this process's running jobs and gives the
jobs of dead processes back to the queue.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from . import metrics
from .config import Settings
from .db import Expired, StagingJob
from .execution import Executor
from .hooks import Hook
from .logs import get_logger
from .periodic import Periodic

log = get_logger("worker")
IDLE_WAIT_SECONDS = 10.0  # an idle thread is woken by the change watch; this only bounds a lost wake-up


class Worker:
    """A pool of threads, each claiming and executing one job at a time."""

    def __init__(self, executor: Executor, threads: int) -> None:
        self.executor = executor
        self._stopping = threading.Event()
        self._wakeups = threading.Semaphore(0)
        self._idle_lock = threading.Lock()
        self._idle = 0
        # Execution slots, shared by the worker threads and direct hand-offs (run_now): at most
        # `threads` jobs run at once in this process, whichever path they came by.
        self._slots = threading.BoundedSemaphore(threads)
        self._threads = [
            threading.Thread(target=self._run, name=f"staging-worker-{n}", daemon=True) for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        log.info("worker %s started with %d threads", self.executor.process_id, len(self._threads))

    def wake(self, jobs: int = 1) -> None:
        """Tell idle threads that ``jobs`` jobs were queued (or may be: each woken thread tries a claim)."""
        for _ in range(min(jobs, len(self._threads))):
            self._wakeups.release()

    def idle_threads(self) -> int:
        """How many threads wait for a wake-up now."""
        with self._idle_lock:
            return self._idle

    def stop(self, grace: float = 30.0) -> None:
        """Stop claiming; let running jobs end within ``grace`` seconds, then hand the rest back."""
        self._stopping.set()
        for _ in self._threads:
            self._wakeups.release()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            log.warning("handing running jobs back to the queue after a %.0fs grace period", grace)
            self.executor.handing_back.set()
            for thread in self._threads:
                thread.join(10)
        log.info("worker %s stopped", self.executor.process_id)

    def run_now(self, job_id: int) -> StagingJob | None:
        """Run a just-queued job in the calling thread when a slot is free; the finished job, or None.

        A synchronous request then skips the hand-off to a worker thread and back. The job was
        queued first and is claimed like any other, so leases and crash recovery are unchanged.
        """
        if self._stopping.is_set() or not self._slots.acquire(blocking=False):
            return None
        try:
            job = self.executor.claim(job_id)
            if job is None:
                return None
            self.executor.execute(job)
        finally:
            self._slots.release()
        return self.executor.jobs.get(job_id)

    def _run(self) -> None:
        poll = self.executor.settings.poll_seconds
        while not self._stopping.is_set():
            if not self._slots.acquire(timeout=poll):
                continue
            try:
                job = self._claim(poll)
                if job is not None:
                    batch = self._batch(job)
                    if self.idle_threads():
                        self.wake(1)  # there may be more: the next thread looks while this one runs
                    self.executor.execute_batch(batch)
            finally:
                self._slots.release()
            if job is None:
                self._wait_idle()

    def _wait_idle(self) -> None:
        with self._idle_lock:
            self._idle += 1
        try:
            self._wakeups.acquire(timeout=IDLE_WAIT_SECONDS)
        finally:
            with self._idle_lock:
                self._idle -= 1

    def _claim(self, poll: float) -> StagingJob | None:
        try:
            return self.executor.claim_next()
        except Exception:
            log.error("claiming a job failed; retrying in %.1fs", poll, exc_info=True)
            self._stopping.wait(poll)
            return None

    def _batch(self, job: StagingJob) -> list[StagingJob]:
        try:
            return self.executor.claim_batch(job)
        except Exception:
            log.error("claiming a batch with job %s failed; it runs alone", job.id, exc_info=True)
            return [job]


class Heartbeat(Periodic):
    """Renews this process's leases and re-queues the jobs of processes that stopped beating."""

    def __init__(self, executor: Executor, settings: Settings, jobs_queued: Hook[int]) -> None:
        super().__init__("heartbeat", settings.lease_seconds / 3, join_seconds=5)
        self.executor, self.settings, self.jobs_queued = executor, settings, jobs_queued

    def tick(self) -> None:
        self.beat()

    def beat(self) -> Expired:
        executor, settings = self.executor, self.settings
        active = executor.active.ids()
        executor.jobs.heartbeat(active, executor.process_id)
        self._release_orphans()
        metrics.HEARTBEAT.set_to_current_time()
        metrics.RUNNING_HERE.set(len(active))
        expired = executor.jobs.requeue_expired(settings.lease_seconds, settings.max_attempts)
        if expired.requeued:
            log.warning("gave %d job(s) of stopped processes back to the queue", len(expired.requeued))
            self.jobs_queued(len(expired.requeued))
        for job_id in expired.failed:  # their last attempt died: nobody else will clean up after them
            log.warning("job %s failed: the process running its last attempt stopped", job_id)
            executor.remove_leftovers(job_id)
        return expired

    def _release_orphans(self) -> None:
        """Give back claims of this process that never started (a follow-up of the claim failed).

        Only claims older by a beat than a snapshot of what runs here, and older than any claim
        still on its way to running: such a claim is never taken for an orphan.
        """
        executor = self.executor
        running, complete_before = executor.active.snapshot()
        orphans = executor.jobs.release_orphans(
            executor.process_id, running, complete_before - timedelta(seconds=self.interval)
        )
        if orphans:
            log.warning("released %d claim(s) whose start failed; they wait in the queue again", orphans)
            self.jobs_queued(orphans)
