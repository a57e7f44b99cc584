"""Running claimed jobs: claim, progress and cancellation, retries with backoff, recording the end.

The ``Executor`` runs one attempt of a job in the calling thread (a worker thread, or an API thread
answering a synchronous request) and records how it ended, conditionally on this process still
holding the job. ``ActiveJobs`` are the jobs running in this process, whose leases the heartbeat keeps.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from . import metrics
from .config import Settings
from .db import JobEnd, JobStatus, JobStore, StagingJob, utcnow
from .db.jobs import HARD_LINK_METHOD
from .errors import StagingError, from_os_error
from .hooks import Hook
from .lifetimes import expiry
from .logs import get_logger
from .methods import EndedJob, MethodRegistry, TransferContext, TransferResult
from .paths import owner_tuple, resolve_destination
from .sources import Sources

log = get_logger("execution")
T = TypeVar("T")
PROGRESS_INTERVAL = 0.5
BATCH_FILE_BYTES = 1024 * 1024  # a copy of a file up to this size may run in a batch (a hard link always may)


def new_process_id(role: str) -> str:
    """This process's name in the job rows it claims (``worker_id``)."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobCancelled(Exception):
    """Raised inside a running transfer whose cancellation was asked for."""


class JobHandedBack(Exception):
    """Raised inside a running transfer when its worker shuts down before it ends."""


class JobTakenOver(Exception):
    """Raised before publishing when another attempt took the job (this one outlived its lease)."""


class ActiveJobs:
    """The jobs running in this process, and which of them were cancelled through this process.

    A claim is "in flight" from before its database update until its job is added here: the
    database may already hold it for this process while it is missing from the running jobs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._cancelled: set[int] = set()
        self._claims_started: list[datetime] = []  # of the claims in flight

    @contextmanager
    def claiming(self) -> Iterator[None]:
        """Around a claim and the ``add`` of its job (the claim's lease starts after this began)."""
        started = utcnow()
        with self._lock:
            self._claims_started.append(started)
        try:
            yield
        finally:
            with self._lock:
                self._claims_started.remove(started)

    def snapshot(self) -> tuple[list[int], datetime]:
        """The running jobs, and a time before which every claim of this process is among them
        unless it failed to start: now, or the start of the oldest claim still in flight."""
        with self._lock:
            return sorted(self._running), min([utcnow(), *self._claims_started])

    def add(self, job_id: int) -> None:
        with self._lock:
            self._running.add(job_id)

    def discard(self, job_id: int) -> None:
        with self._lock:
            self._running.discard(job_id)
            self._cancelled.discard(job_id)

    @contextmanager
    def running(self, job_ids: Sequence[int]) -> Iterator[None]:
        for job_id in job_ids:
            self.add(job_id)
        try:
            yield
        finally:
            for job_id in job_ids:
                self.discard(job_id)

    def ids(self) -> list[int]:
        with self._lock:
            return sorted(self._running)

    def cancel(self, job_ids: list[int]) -> None:
        """Mark those of ``job_ids`` that run here, so they stop at their next progress report."""
        with self._lock:
            self._cancelled.update(set(job_ids) & self._running)

    def is_cancelled(self, job_id: int) -> bool:
        return job_id in self._cancelled


class _KeyedLocks:
    """One lock per destination, so identical requests in this process wait instead of racing."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    def hold(self, key: str) -> AbstractContextManager[None]:
        return self.hold_all([key])

    @contextmanager
    def hold_all(self, keys: Iterable[str]) -> Iterator[None]:
        """Several locks, always taken in the same order, so that two holders never wait for each other."""
        ordered = sorted(set(keys))
        with self._guard:
            locks = [self._use(key) for key in ordered]
        taken: list[threading.Lock] = []
        try:
            for lock in locks:
                lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in taken:
                lock.release()
            with self._guard:
                for key in ordered:
                    self._unuse(key)

    def _use(self, key: str) -> threading.Lock:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or threading.Lock()
        self._locks[key] = (lock, users + 1)
        return lock

    def _unuse(self, key: str) -> None:
        lock, users = self._locks[key]
        if users == 1:
            del self._locks[key]
        else:
            self._locks[key] = (lock, users - 1)


class Executor:
    """Claims jobs for this process and runs them to the end of an attempt."""

    def __init__(
        self,
        settings: Settings,
        jobs: JobStore,
        methods: MethodRegistry,
        sources: Sources,
        process_id: str,
        job_ended: Hook[int],
    ) -> None:
        self.settings, self.jobs, self.methods, self.sources = settings, jobs, methods, sources
        self.process_id = process_id
        self.active = ActiveJobs()
        self.job_ended = job_ended
        self.handing_back = threading.Event()  # set at shutdown: running jobs go back to the queue
        self._destination_locks = _KeyedLocks()

    # -- claiming -------------------------------------------------------------------------------

    def claim_next(self) -> StagingJob | None:
        """The next job for this process, within the per-user limit of running jobs."""
        with self.active.claiming():
            job = self.jobs.claim_next(self.process_id, self.settings.max_running_per_user)
            self._count_as_running(job)
        return job  # within the limit on every database: claims under a limit take turns (JobStore.claim_next)

    def claim(self, job_id: int) -> StagingJob | None:
        """A given queued job for this process (a direct hand-off), within the per-user limit."""
        with self.active.claiming():
            job = self.jobs.claim(job_id, self.process_id)
            self._count_as_running(job)
        return self._hold(job)

    def claim_batch(self, first: StagingJob) -> list[StagingJob]:
        """``first``, with more jobs like it claimed to run together (see ``execute_batch``) when it is a
        small file or a hard link whose method stages batches; else ``first`` alone."""
        size = self.settings.batch_jobs
        if size <= 1 or not self._batchable(first):
            return [first]
        with self.active.claiming():
            more = self.jobs.claim_batch(
                first, self.process_id, size - 1, BATCH_FILE_BYTES, self.settings.max_running_per_user
            )
            for job in more:
                self._count_as_running(job)
        return [first, *more]

    def _batchable(self, job: StagingJob) -> bool:
        small = job.method == HARD_LINK_METHOD or (job.bytes_total is not None and job.bytes_total <= BATCH_FILE_BYTES)
        return small and self.methods.get(job.method).batches

    def _count_as_running(self, job: StagingJob | None) -> None:
        """A fresh claim runs here from now on: the heartbeat keeps its lease and never releases it."""
        if job is not None:
            self.active.add(job.id)

    def _hold(self, job: StagingJob | None) -> StagingJob | None:
        """Keep a fresh hand-off claim, unless it is over the per-user limit or the database did not
        answer that check: then it is given back before it starts, released, not charged an attempt.
        """
        if job is None:
            return None
        if not self._within_user_limit(job):
            self._with_database(lambda: self.jobs.release(job.id, self.process_id), f"job {job.id}: release")
            self.active.discard(job.id)  # if the release failed too, the heartbeat releases the orphan
            return None
        return job

    def _within_user_limit(self, job: StagingJob) -> bool:
        limit = self.settings.max_running_per_user
        if not limit:
            return True
        try:
            return self.jobs.running_count(job.username) <= limit
        except OperationalError:
            log.warning("job %s: the database did not answer after the claim; giving it back", job.id)
            return False

    def cancel(self, job_ids: list[int]) -> None:
        """Cancel jobs: queued ones at once; running ones stop at their next progress report."""
        for job_id in self.jobs.cancel(job_ids):  # cancelled in the queue after an attempt that died
            self.remove_leftovers(job_id)
        self.active.cancel(job_ids)

    def remove_leftovers(self, job_id: int) -> None:
        """Remove what the attempts of an ended job left at its destination; never raises."""
        job = self.jobs.get(job_id)
        if job is None or not job.attempts:
            return
        try:
            destination = resolve_destination(self.settings.user_areas, str(job.username), job.relative_path)
            ended = EndedJob(job.id, str(job.username), destination, self.settings, job.attempts)
            self.methods.get(job.method).remove_leftovers(ended)
        except Exception:
            log.warning("job %s: could not remove what its attempts left", job_id, exc_info=True)

    # -- running ----------------------------------------------------------------------------------

    def execute(self, job: StagingJob) -> None:
        """Run a job claimed by this process to the end of this attempt and record it; never raises."""
        try:
            with self.active.running([job.id]):  # until its end is recorded: the heartbeat keeps the lease
                self._attempt(job)
        finally:
            self.job_ended(job.id)

    def execute_batch(self, jobs: list[StagingJob]) -> None:
        """Run jobs claimed together (``claim_batch``) to the end of their attempts, their flushes and
        records shared; never raises. Each job ends as it would alone, and is logged on its own line."""
        if len(jobs) == 1:
            self.execute(jobs[0])
            return
        try:
            with self.active.running([job.id for job in jobs]):
                self._attempt_batch(jobs)
        finally:
            for job in jobs:
                self.job_ended(job.id)

    def _attempt(self, job: StagingJob) -> None:
        started = time.monotonic()
        try:
            if job.cancel_requested:
                raise JobCancelled
            ctx = self._context(job)
            with self._destination_locks.hold(str(ctx.destination.path)):
                result = self.methods.get(job.method).stage(ctx)
        except Exception as error:  # every way an attempt can end is recorded
            self._conclude(job, started, error)
        else:
            self._succeed(job, result, started)

    def _attempt_batch(self, jobs: list[StagingJob]) -> None:
        started = time.monotonic()
        contexts: list[TransferContext] = []
        for job in jobs:
            try:
                if job.cancel_requested:
                    raise JobCancelled
                contexts.append(self._context(job, batched=True))
            except Exception as error:  # every way an attempt can end is recorded
                self._conclude(job, started, error)
        try:
            with self._destination_locks.hold_all(str(ctx.destination.path) for ctx in contexts):
                outcomes = self.methods.get(jobs[0].method).stage_batch(contexts, self._held_among)
        except Exception as error:  # shared by the whole batch (a flush failed): each job ends by it
            outcomes = [error] * len(contexts)
        by_id = {job.id: job for job in jobs}
        succeeded: list[tuple[StagingJob, TransferResult]] = []
        for ctx, outcome in zip(contexts, outcomes, strict=True):
            if isinstance(outcome, Exception):
                self._conclude(by_id[ctx.job_id], started, outcome)
            else:
                succeeded.append((by_id[ctx.job_id], outcome))
        self._succeed_all(succeeded, started)

    def _context(self, job: StagingJob, batched: bool = False) -> TransferContext:
        source, raw = self.sources.of(job)
        return TransferContext(
            job_id=job.id,
            username=str(job.username),
            plan=source.plan(raw, None, job.source_pin),  # the caller's groups were checked at acceptance
            destination=resolve_destination(self.settings.user_areas, str(job.username), job.relative_path),
            settings=self.settings,
            report_progress=self._progress_reporter(job.id),
            attempt=job.attempts,
            published_identity=lambda: self._published_identity(job),
            confirm_held=lambda: self._confirm_held(job),
            owner=owner_tuple(job.owner_uid, job.owner_gid),
            batched=batched,
        )

    def _held_among(self, contexts: Sequence[TransferContext]) -> set[int]:
        return self.jobs.held_among([(ctx.job_id, ctx.attempt) for ctx in contexts], self.process_id)

    def _conclude(self, job: StagingJob, started: float, error: Exception) -> None:
        """Record an attempt that ended by raising ``error``."""
        if isinstance(error, JobCancelled):
            self._end(job, started, "cancelled", "", self._record_cancelled)
            self._remove_earlier_leftovers(job)
        elif isinstance(error, JobHandedBack):
            self._end(job, started, "handed back", "at shutdown", self._record_handed_back)
        elif isinstance(error, JobTakenOver):
            metrics.record_attempt(job.method, "taken over", time.monotonic() - started)
            log.warning(
                "job %s: attempt %s lost its lease to another attempt; it published nothing", job.id, job.attempts
            )
        elif isinstance(error, StagingError):
            self._fail(job, error, started)
        elif isinstance(error, OperationalError):
            # The service's own database trouble is not the job's: it goes back, no attempt charged.
            log.warning("job %s: the database failed during the attempt; it goes back to the queue", job.id)
            self._end(job, started, "handed back", "the database failed", self._record_database_trouble)
        elif isinstance(error, OSError):
            log.error("job %s failed on the filesystem", job.id, exc_info=error)
            self._fail(job, from_os_error(error), started)
        else:
            log.error("job %s failed unexpectedly", job.id, exc_info=error)
            self._fail(job, StagingError("internal_error", "staging failed unexpectedly"), started)

    def _published_identity(self, job: StagingJob) -> str | None:
        """What the last success here published (None when unknown: then nothing is repaired)."""
        destination = job.destination
        if destination is None:
            return None
        return self._with_database(
            lambda: self.jobs.published_identity(str(job.username), destination), f"job {job.id}: earlier result"
        )

    def _confirm_held(self, job: StagingJob) -> None:
        held = self._with_database(
            lambda: self.jobs.holds(job.id, self.process_id, job.attempts), f"job {job.id}: confirming its claim"
        )
        if held is None:  # unknown: publishing could race another attempt, so this attempt does not
            raise StagingError("database_unavailable", "the claim could not be confirmed before publishing")
        if not held:
            raise JobTakenOver

    def _progress_reporter(self, job_id: int) -> Callable[[int, int], None]:
        """Write progress at most every PROGRESS_INTERVAL and stop the job when asked to.

        The database carries cancellations across processes; a database that does not answer only
        delays them (the copy goes on, the lease is renewed by the heartbeat when it is back).
        """
        last = [time.monotonic()]

        def report(done: int, total: int) -> None:
            if self.handing_back.is_set():
                raise JobHandedBack
            if self.active.is_cancelled(job_id):
                raise JobCancelled
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL:
                return
            last[0] = now
            try:
                cancel = self.jobs.report_progress(job_id, self.process_id, done, total)
            except OperationalError:
                log.warning("job %s: progress not recorded, the database does not answer", job_id)
                return
            if cancel:
                raise JobCancelled

        return report

    # -- recording the end ----------------------------------------------------------------------

    def _record_cancelled(self, job: StagingJob) -> bool:
        return self.jobs.finish(
            job.id,
            self.process_id,
            JobStatus.CANCELLED,
            attempt=job.attempts,
            error_code="job_cancelled",
            error_reason="cancelled while it ran",
        )

    def _record_database_trouble(self, job: StagingJob) -> bool:
        return self.jobs.requeue(
            job.id,
            self.process_id,
            attempt=job.attempts,
            delay=self.settings.retry_backoff_seconds,
            error_code="database_unavailable",
            error_reason="the job database failed during the attempt",
            refund=True,
        )

    def _record_handed_back(self, job: StagingJob) -> bool:
        return self.jobs.requeue(
            job.id,
            self.process_id,
            attempt=job.attempts,
            delay=0,
            error_code="interrupted",
            error_reason="handed back when its worker shut down",
            refund=True,
        )

    def _succeed(self, job: StagingJob, result: TransferResult, started: float) -> None:
        end, detail = self._success(job, result)
        self._end(job, started, end.status.value, detail, lambda job: self.jobs.finish_many(self.process_id, [end])[0])

    def _succeed_all(self, succeeded: list[tuple[StagingJob, TransferResult]], started: float) -> None:
        """Record the successes of a batch in one transaction; each is logged as ``_succeed`` logs it."""
        if not succeeded:
            return
        ends = [self._success(job, result) for job, result in succeeded]
        recorded = self._with_database(
            lambda: self.jobs.finish_many(self.process_id, [end for end, _ in ends]),
            f"a batch of {len(ends)} jobs: recording their ends",
        ) or [False] * len(ends)
        for (job, _), (end, detail), done in zip(succeeded, ends, recorded, strict=True):
            self._log_end(job, end.status.value, started, done, detail)

    def _success(self, job: StagingJob, result: TransferResult) -> tuple[JobEnd, str]:
        """How a successful attempt is recorded, and the detail of its log line."""
        status = JobStatus.SKIPPED if result.outcome == "skipped" else JobStatus.SUCCEEDED
        if status is JobStatus.SUCCEEDED:
            metrics.BYTES_STAGED.labels(str(job.method)).inc(result.bytes)
        elif job.lifetime_seconds is not None and job.destination is not None:
            # the data is there already, staged by an earlier job: it lasts as long as this one asked
            destination, expires_at = job.destination, expiry(utcnow(), job.lifetime_seconds)
            self._with_database(
                lambda: self.jobs.extend_holder(str(job.username), destination, expires_at),
                f"job {job.id}: extending the earlier staging",
            )
        fields = {
            "bytes_total": result.bytes,
            "bytes_done": result.bytes if status is JobStatus.SUCCEEDED else 0,
            "files_total": result.files,
            "checksum": result.checksum,
            "read_only": result.read_only,
            "note": result.note,
            "output_identity": result.output_identity,
            "error_code": None,
            "error_reason": None,
        }
        outputs = [entry._asdict() for entry in result.outputs]
        expires = self.methods.get(job.method).releasable and status is JobStatus.SUCCEEDED
        return JobEnd(
            job.id, job.attempts, status, fields, outputs, expires
        ), f"bytes={result.bytes} checksum={result.checksum}"

    def _fail(self, job: StagingJob, error: StagingError, started: float) -> None:
        detail = f"code={error.code} reason={error.detail}"
        if error.retryable and job.attempts < self.settings.max_attempts:
            delay = self.backoff(job.attempts)

            def requeue(job: StagingJob) -> bool:
                return self.jobs.requeue(
                    job.id,
                    self.process_id,
                    attempt=job.attempts,
                    delay=delay,
                    error_code=error.code,
                    error_reason=error.detail,
                )

            self._end(job, started, "failed, retrying", f"in {delay:g}s {detail}", requeue)
            return

        def fail(job: StagingJob) -> bool:
            return self.jobs.finish(
                job.id,
                self.process_id,
                JobStatus.FAILED,
                attempt=job.attempts,
                error_code=error.code,
                error_reason=error.detail,
            )

        self._end(job, started, "failed", detail, fail)
        self._remove_earlier_leftovers(job)

    def _remove_earlier_leftovers(self, job: StagingJob) -> None:
        """An attempt removes its own temporary; one that ends the job early also removes those of earlier ones."""
        if job.attempts > 1:
            self.remove_leftovers(job.id)

    def backoff(self, attempts_made: int) -> float:
        base, cap = self.settings.retry_backoff_seconds, self.settings.retry_backoff_max_seconds
        return float(min(cap, base * 2 ** max(0, attempts_made - 1)))

    def _end(
        self, job: StagingJob, started: float, outcome: str, detail: str, record: Callable[[StagingJob], bool]
    ) -> None:
        """Record how an attempt ended, waiting out a database that is restarting (up to a lease)."""
        recorded = self._with_database(lambda: record(job), f"job {job.id}: recording its end")
        self._log_end(job, outcome, started, bool(recorded), detail)

    def _with_database(self, action: Callable[[], T], what: str) -> T | None:
        """``action()``, tried again while the database does not answer, for up to a lease; None if it never did."""
        deadline, pause = time.monotonic() + self.settings.lease_seconds, 0.2
        while True:
            try:
                return action()
            except OperationalError:
                if time.monotonic() > deadline:
                    log.error("%s failed: the database does not answer", what)
                    return None
                log.warning("%s: the database does not answer; trying again in %.1fs", what, pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _log_end(self, job: StagingJob, outcome: str, started: float, recorded: bool, detail: str) -> None:
        metrics.record_attempt(job.method, outcome, time.monotonic() - started)
        level = log.warning if outcome.startswith("failed") else log.info
        level(
            "job %s %s method=%s user=%s source=%s destination=%s %s duration=%.3fs",
            job.id,
            outcome,
            job.method,
            job.username,
            job.local_path_on_storage or job.did,
            job.destination,
            detail,
            time.monotonic() - started,
        )
        if not recorded:
            log.warning("job %s: this worker no longer holds it; the outcome above was not recorded", job.id)
