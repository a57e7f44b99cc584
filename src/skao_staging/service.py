"""The staging pipeline: one code path for every method.

``submit`` validates (every user string becomes a path in ``paths`` here, once) and records a job;
``execute`` runs a claimed job in a worker: pre-checks, then the method's duplicate check,
transfer, verification and read-only step, then the job's end. Refusals are recorded too.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from . import metrics
from .config import Settings
from .db import Database, JobStatus, JobStore, StagingJob, utcnow
from .errors import StagingError, from_os_error
from .logs import get_logger
from .methods import MethodRegistry, StagingMethod, TransferContext, TransferResult
from .paths import Owner, StorageRoots, resolve_destination, validate_username, walk_source

log = get_logger("service")
PROGRESS_INTERVAL = 0.5
MAX_RECORDED_TEXT = 8192


def new_worker_id(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class StageItem:
    method: str | None
    local_path_on_storage: str | None
    relative_path: str | None


def _chown_target(job: StagingJob) -> Owner | None:
    """The job's (uid, gid) for os.chown (-1 leaves one unchanged), or None to keep the service's."""
    if job.owner_uid is None and job.owner_gid is None:
        return None
    return (
        -1 if job.owner_uid is None else job.owner_uid,
        -1 if job.owner_gid is None else job.owner_gid,
    )


def _refusal_of(job: StagingJob) -> StagingError | None:
    """The error of a job refused at submission (failed without an attempt), for a replayed answer."""
    if job.status != JobStatus.FAILED or job.attempts or not job.error_code:
        return None
    error = StagingError(job.error_code, job.error_reason or "", job_id=job.id)
    return error


def clip_for_record(fields: dict[str, Any]) -> dict[str, Any]:
    """Make raw user input storable: valid UTF-8, cut to the column's size (hostile input is long)."""
    clipped: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, str):
            value = value.encode("utf-8", "replace").decode("utf-8")
            limit = getattr(StagingJob.__table__.c[key].type, "length", None) or MAX_RECORDED_TEXT
            value = value if len(value) <= limit else value[: limit - 1] + "…"
        clipped[key] = value
    return clipped


class JobCancelled(Exception):
    """Raised inside a running transfer whose cancellation was asked for."""


class JobHandedBack(Exception):
    """Raised inside a running transfer when its worker shuts down before it ends."""


class _KeyedLocks:
    """One lock per destination, so identical requests in this process wait instead of racing."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class StagingService:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.jobs = JobStore(db)
        self.methods = MethodRegistry(settings)
        self.roots = StorageRoots(settings.storage_roots)
        self.process_id = new_worker_id("api")
        self._destination_locks = _KeyedLocks()
        self._active: set[int] = set()
        self._active_lock = threading.Lock()
        self._cancelled_here: set[int] = set()
        self.handing_back = threading.Event()  # set at shutdown: running jobs go back to the queue
        self._listeners: list[Callable[[int], None]] = []
        self.on_submit: Callable[[], None] = lambda: None

    def add_finish_listener(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    def _mark_active(self, job_id: int, active: bool) -> None:
        """Jobs running in this process; the heartbeat keeps their leases."""
        with self._active_lock:
            if active:
                self._active.add(job_id)
            else:
                self._active.discard(job_id)
                self._cancelled_here.discard(job_id)

    @contextmanager
    def _active_job(self, job_id: int) -> Iterator[None]:
        self._mark_active(job_id, True)
        try:
            yield
        finally:
            self._mark_active(job_id, False)

    def active_job_ids(self) -> list[int]:
        with self._active_lock:
            return sorted(self._active)

    # -- submission ---------------------------------------------------------------------------

    def _validate(
        self,
        method: str | None,
        username: str | None,
        local_path_on_storage: str | None,
        relative_path: str | None,
        groups: frozenset[str] | None = None,
    ) -> tuple[str, int | None]:
        """Check one item as a worker would run it: the destination as the job shows it, and the size."""
        staging_method = self.methods.get(method)
        if not staging_method.runs_in_worker:
            raise StagingError("invalid_request", f"{staging_method.name} is answered directly, not queued")
        validate_username(username)
        destination = resolve_destination(self.settings.user_areas, str(username), relative_path)
        source = self._readable_source(local_path_on_storage, groups)
        staging_method.check_source(source, self.settings)
        label = staging_method.destination_label(str(username), destination, self.settings)
        return label, self._size(source)

    def _owner_fields(self, owner: tuple[int | None, int | None]) -> dict[str, int | None]:
        """The uid/gid staged data gets: the caller's (from token claims), else the configured ones."""
        uid, gid = owner
        return {
            "owner_uid": uid if uid is not None else self.settings.owner_uid,
            "owner_gid": gid if gid is not None else self.settings.owner_gid,
        }

    def _readable_source(self, raw: str | None, groups: frozenset[str] | None) -> Path:
        source = self.roots.resolve_source(raw)
        if not self.roots.readable_by(source, groups, self.settings.group_storage_roots):
            raise StagingError("source_forbidden", f"your groups may not read '{raw}'")
        return source

    def _size(self, source: Path) -> int | None:
        """A file's size; a folder's only when a byte quota needs it (walking a dataset costs)."""
        if not source.is_dir():
            return source.stat().st_size
        if not self.settings.quota_bytes_per_day:
            return None
        return sum(entry.size for entry in walk_source(source, self.roots))

    def _check_quotas(self, username: str | None, jobs: int, size: int) -> None:
        limit = self.settings.max_active_jobs_per_user
        if limit and self.jobs.active_count(username) + jobs > limit:
            raise StagingError(
                "too_many_jobs", f"at most {limit} jobs of one user may be queued or running", retry_after=30
            )
        quota = self.settings.quota_bytes_per_day
        if quota and self.jobs.bytes_since(username, utcnow() - timedelta(days=1)) + size > quota:
            raise StagingError("quota_exceeded", f"this would exceed the quota of {quota} bytes in 24 hours")

    def submit(
        self,
        method: str | None,
        username: str | None,
        local_path_on_storage: str | None,
        relative_path: str | None,
        *,
        groups: frozenset[str] | None = None,
        owner: tuple[int | None, int | None] = (None, None),
        wake_workers: bool = True,
    ) -> StagingJob:
        """Validate a staging request and queue it; a refusal is recorded, then raised."""
        fields: dict[str, Any] = {
            **self._owner_fields(owner),
            "request_id": str(uuid.uuid4()),
            "item_index": 0,
            "method": self.methods.canonical(method),
            "username": username,
            "local_path_on_storage": local_path_on_storage,
            "relative_path": relative_path,
        }
        try:
            label, size = self._validate(method, username, local_path_on_storage, relative_path, groups)
            self._check_quotas(username, 1, size or 0)
        except StagingError as error:
            self.record_refusal(fields, error)
            raise
        job = self.jobs.create(status=JobStatus.QUEUED, destination=label, bytes_total=size, **fields)
        log.info(
            "job %s queued method=%s user=%s source=%s destination=%s",
            job.id,
            job.method,
            username,
            local_path_on_storage,
            label,
        )
        if wake_workers:
            self.on_submit()
        return job

    def submit_many(
        self,
        username: str | None,
        items: list[StageItem],
        idempotency_key: str | None = None,
        groups: frozenset[str] | None = None,
        owner: tuple[int | None, int | None] = (None, None),
    ) -> tuple[str, list[tuple[StagingJob, StagingError | None]]]:
        """Queue one job per item in one transaction; refused items become failed jobs beside them.

        A repeated ``idempotency_key`` of the same user returns the jobs of the first submission.
        """
        limit = self.settings.max_items_per_request
        if len(items) > limit:
            error = StagingError("too_many_items", f"a request may hold at most {limit} items, not {len(items)}")
            self.record_refusal({"username": username, "method": None}, error)
            raise error
        request_id = str(uuid.uuid4())
        earlier = self.jobs.open_request(request_id, username, idempotency_key)
        if earlier is not None:
            return earlier, [(job, _refusal_of(job)) for job in self.jobs.jobs_of_request(earlier)]
        rows: list[dict[str, Any]] = []
        errors: list[StagingError | None] = []
        for index, item in enumerate(items):
            fields = clip_for_record(
                {
                    **self._owner_fields(owner),
                    "request_id": request_id,
                    "item_index": index,
                    "method": self.methods.canonical(item.method),
                    "username": username,
                    "local_path_on_storage": item.local_path_on_storage,
                    "relative_path": item.relative_path,
                }
            )
            try:
                label, size = self._validate(
                    item.method, username, item.local_path_on_storage, item.relative_path, groups
                )
            except StagingError as error:
                rows.append(
                    {
                        **fields,
                        "status": JobStatus.FAILED,
                        "error_code": error.code,
                        "error_reason": error.detail,
                        "finished_at": utcnow(),
                    }
                )
                errors.append(error)
                continue
            rows.append({**fields, "status": JobStatus.QUEUED, "destination": label, "bytes_total": size})
            errors.append(None)
        valid = [row for row in rows if row["status"] == JobStatus.QUEUED]
        try:
            self._check_quotas(username, len(valid), sum(row["bytes_total"] or 0 for row in valid))
        except StagingError as error:
            self.record_refusal({"username": username, "method": None, "request_id": request_id}, error)
            raise
        jobs = self.jobs.create_many(rows)
        for job, refusal in zip(jobs, errors, strict=True):
            if refusal is not None:
                refusal.extra["job_id"] = job.id
                log.warning("job %s refused user=%s code=%s reason=%s", job.id, username, refusal.code, refusal.detail)
        queued = errors.count(None)
        log.info("request %s: %d job(s) queued, %d refused, user=%s", request_id, queued, len(items) - queued, username)
        if queued:
            self.on_submit()
        return request_id, list(zip(jobs, errors, strict=True))

    def record_refusal(self, fields: dict[str, Any], error: StagingError) -> StagingJob:
        """Record a refused request as a failed job; the error then carries the job's id."""
        fields = {"request_id": str(uuid.uuid4()), **clip_for_record(fields)}
        job = self.jobs.create(status=JobStatus.FAILED, error_code=error.code, error_reason=error.detail, **fields)
        error.extra["job_id"] = job.id
        log.warning(
            "job %s refused method=%s user=%s source=%s relative_path=%s code=%s reason=%s",
            job.id,
            fields.get("method"),
            fields.get("username"),
            fields.get("local_path_on_storage"),
            fields.get("relative_path"),
            error.code,
            error.detail,
        )
        return job

    def start_download(
        self,
        username: str | None,
        local_path_on_storage: str | None,
        relative_path: str | None,
        groups: frozenset[str] | None = None,
    ) -> tuple[StagingJob, Path]:
        """Check a direct download and record it as running in this API process."""
        fields: dict[str, Any] = {
            "method": "direct_download",
            "username": username,
            "local_path_on_storage": local_path_on_storage,
            "relative_path": relative_path,
        }
        try:
            if username is not None:
                validate_username(username)
            source = self._readable_source(local_path_on_storage, groups)
            self.methods.get("direct_download").check_source(source, self.settings)
        except StagingError as error:
            self.record_refusal(fields, error)
            raise
        size = source.stat().st_size
        now = utcnow()
        job = self.jobs.create(
            request_id=str(uuid.uuid4()),
            status=JobStatus.RUNNING,
            worker_id=self.process_id,
            attempts=1,
            started_at=now,
            heartbeat_at=now,
            bytes_total=size,
            files_total=1,
            **fields,
        )
        self._mark_active(job.id, True)
        log.info(
            "job %s download started user=%s source=%s bytes=%s",
            job.id,
            username,
            local_path_on_storage,
            size,
        )
        return job, source

    def finish_download(self, job: StagingJob, bytes_sent: int, error: BaseException | None) -> None:
        self._mark_active(job.id, False)
        if error is None:
            self.jobs.finish(job.id, self.process_id, JobStatus.SUCCEEDED, bytes_done=bytes_sent)
            log.info("job %s download succeeded bytes=%s", job.id, bytes_sent)
        else:
            self.jobs.finish(
                job.id,
                self.process_id,
                JobStatus.FAILED,
                bytes_done=bytes_sent,
                error_code="download_interrupted",
                error_reason="the client went away before the download finished",
            )
            log.warning("job %s download interrupted after %s bytes: %r", job.id, bytes_sent, error)

    # -- execution ----------------------------------------------------------------------------

    def claim_next(self) -> StagingJob | None:
        """The next job for this process, within the per-user limit of running jobs."""
        job = self.jobs.claim_next(self.process_id, self.settings.max_running_per_user)
        # On SQLite the claim is exact (one writer); elsewhere concurrent claimers can overshoot.
        return job if self.db.is_sqlite else self._within_user_limit(job)

    def claim(self, job_id: int) -> StagingJob | None:
        """A given queued job for this process (a direct hand-off), within the per-user limit."""
        return self._within_user_limit(self.jobs.claim(job_id, self.process_id))

    def _within_user_limit(self, job: StagingJob | None) -> StagingJob | None:
        limit = self.settings.max_running_per_user
        if job is not None and limit and self.jobs.running_count(job.username) > limit:
            # Claimed beside other claims for the same user: give it back before it starts.
            self.jobs.release(job.id, self.process_id)
            return None
        return job

    def execute(self, job: StagingJob) -> None:
        """Run a job claimed by this process to the end of this attempt and record it; never raises."""
        started, worker_id = time.monotonic(), self.process_id
        try:
            with self._active_job(job.id):
                if job.cancel_requested:
                    raise JobCancelled
                result = self._run(job, worker_id)
        except JobCancelled:
            self._end(
                job,
                started,
                "cancelled",
                "",
                lambda: self.jobs.finish(
                    job.id,
                    worker_id,
                    JobStatus.CANCELLED,
                    error_code="job_cancelled",
                    error_reason="cancelled while it ran",
                ),
            )
        except JobHandedBack:
            self._end(
                job,
                started,
                "handed back",
                "at shutdown",
                lambda: self.jobs.requeue(
                    job.id,
                    worker_id,
                    delay=0,
                    error_code="interrupted",
                    error_reason="handed back when its worker shut down",
                    refund=True,
                ),
            )
        except StagingError as error:
            self._fail(job, worker_id, error, started)
        except OSError as exc:
            log.error("job %s failed on the filesystem", job.id, exc_info=True)
            self._fail(job, worker_id, from_os_error(exc), started)
        except Exception:
            log.error("job %s failed unexpectedly", job.id, exc_info=True)
            self._fail(job, worker_id, StagingError("internal_error", "staging failed unexpectedly"), started)
        else:
            self._succeed(job, worker_id, result, started)
        finally:
            for listener in self._listeners:
                listener(job.id)

    def _run(self, job: StagingJob, worker_id: str) -> TransferResult:
        method: StagingMethod = self.methods.get(job.method)
        destination = resolve_destination(self.settings.user_areas, str(job.username), job.relative_path)
        source = self.roots.resolve_source(job.local_path_on_storage)
        context = TransferContext(
            job_id=job.id,
            username=str(job.username),
            source=source,
            destination=destination,
            roots=self.roots,
            settings=self.settings,
            report_progress=self._progress_reporter(job.id, worker_id),
            owner=_chown_target(job),
        )
        with self._destination_locks.hold(str(destination.path)):
            return method.stage(context)

    def request_cancel(self, job_ids: list[int]) -> None:
        """Cancel jobs: queued ones at once; running ones stop at their next progress report."""
        self.jobs.cancel(job_ids)
        with self._active_lock:
            self._cancelled_here.update(set(job_ids) & self._active)

    def _progress_reporter(self, job_id: int, worker_id: str) -> Callable[[int, int], None]:
        """Write progress at most every PROGRESS_INTERVAL and stop the job when asked to.

        The database carries cancellations across processes; a database that does not answer only
        delays them (the copy goes on, the lease is renewed by the heartbeat when it is back).
        """
        last = [time.monotonic()]

        def report(done: int, total: int) -> None:
            if self.handing_back.is_set():
                raise JobHandedBack
            if job_id in self._cancelled_here:
                raise JobCancelled
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL:
                return
            last[0] = now
            try:
                cancel = self.jobs.report_progress(job_id, worker_id, done, total)
            except OperationalError:
                log.warning("job %s: progress not recorded, the database does not answer", job_id)
                return
            if cancel:
                raise JobCancelled

        return report

    def _succeed(self, job: StagingJob, worker_id: str, result: TransferResult, started: float) -> None:
        status = JobStatus.SKIPPED if result.outcome == "skipped" else JobStatus.SUCCEEDED
        detail = f"bytes={result.bytes} checksum={result.checksum}"
        if status is JobStatus.SUCCEEDED:
            metrics.BYTES_STAGED.labels(str(job.method)).inc(result.bytes)
        self._end(
            job,
            started,
            status.value,
            detail,
            lambda: self.jobs.finish(
                job.id,
                worker_id,
                status,
                bytes_total=result.bytes,
                bytes_done=result.bytes if status is JobStatus.SUCCEEDED else 0,
                files_total=result.files,
                checksum=result.checksum,
                read_only=result.read_only,
                note=result.note,
                error_code=None,
                error_reason=None,
            ),
        )

    def _fail(self, job: StagingJob, worker_id: str, error: StagingError, started: float) -> None:
        detail = f"code={error.code} reason={error.detail}"
        if error.retryable and job.attempts < self.settings.max_attempts:
            delay = self.backoff(job.attempts)
            self._end(
                job,
                started,
                "failed, retrying",
                f"in {delay:g}s {detail}",
                lambda: self.jobs.requeue(
                    job.id,
                    worker_id,
                    delay=delay,
                    error_code=error.code,
                    error_reason=error.detail,
                ),
            )
            return
        self._end(
            job,
            started,
            "failed",
            detail,
            lambda: self.jobs.finish(
                job.id, worker_id, JobStatus.FAILED, error_code=error.code, error_reason=error.detail
            ),
        )

    def backoff(self, attempts_made: int) -> float:
        base, cap = self.settings.retry_backoff_seconds, self.settings.retry_backoff_max_seconds
        return float(min(cap, base * 2 ** max(0, attempts_made - 1)))

    def _end(self, job: StagingJob, started: float, outcome: str, detail: str, record: Callable[[], bool]) -> None:
        """Record how an attempt ended, waiting out a database that is restarting (up to a lease)."""
        deadline, pause = time.monotonic() + self.settings.lease_seconds, 0.2
        while True:
            try:
                recorded = record()
                break
            except OperationalError:
                if time.monotonic() > deadline:
                    log.error("job %s: could not record its end, the database does not answer", job.id)
                    recorded = False
                    break
                log.warning("job %s: the database does not answer; trying again in %.1fs", job.id, pause)
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        self._log_end(job, outcome, started, recorded, detail)

    def _log_end(self, job: StagingJob, outcome: str, started: float, recorded: bool, detail: str) -> None:
        metrics.record_attempt(job.method, outcome, time.monotonic() - started)
        level = log.warning if outcome.startswith("failed") else log.info
        level(
            "job %s %s method=%s user=%s source=%s destination=%s %s duration=%.3fs",
            job.id,
            outcome,
            job.method,
            job.username,
            job.local_path_on_storage,
            job.destination,
            detail,
            time.monotonic() - started,
        )
        if not recorded:
            log.warning("job %s: this worker no longer holds it; the outcome above was not recorded", job.id)
