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
from pathlib import Path
from typing import Any

from .config import Settings
from .db import Database, JobStatus, JobStore, StagingJob, utcnow
from .errors import StagingError, from_os_error
from .logs import get_logger
from .methods import MethodRegistry, StagingMethod, TransferContext, TransferResult
from .paths import StorageRoots, resolve_destination, validate_username

log = get_logger("service")
PROGRESS_INTERVAL = 0.5
MAX_RECORDED_TEXT = 8192


def new_worker_id(role: str) -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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

    def submit(
        self,
        method: str | None,
        username: str | None,
        local_path_on_storage: str | None,
        relative_path: str | None,
        request_id: str | None = None,
        *,
        wake_workers: bool = True,
    ) -> StagingJob:
        """Validate a staging request and queue it; a refusal is recorded, then raised."""
        request_id = request_id or str(uuid.uuid4())
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": self.methods.canonical(method),
            "username": username,
            "local_path_on_storage": local_path_on_storage,
            "relative_path": relative_path,
        }
        try:
            staging_method = self.methods.get(method)
            if not staging_method.runs_in_worker:
                raise StagingError("invalid_request", f"{staging_method.name} is answered directly, not queued")
            validate_username(username)
            destination = resolve_destination(self.settings.user_areas, str(username), relative_path)
            source = self.roots.resolve_source(local_path_on_storage)
            staging_method.check_source(source, self.settings)
        except StagingError as error:
            self.record_refusal(fields, error)
            raise
        label = staging_method.destination_label(str(username), destination, self.settings)
        job = self.jobs.create(status=JobStatus.QUEUED, destination=label, **fields)
        log.info(
            "job %s queued method=%s user=%s source=%s destination=%s",
            job.id,
            job.method,
            username,
            local_path_on_storage,
            destination.path,
        )
        if wake_workers:
            self.on_submit()
        return job

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
        self, username: str | None, local_path_on_storage: str | None, relative_path: str | None
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
            source = self.roots.resolve_source(local_path_on_storage)
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
        return self.jobs.claim_next(self.process_id)

    def execute(self, job: StagingJob) -> None:
        """Run a job claimed by this process to its end and record it; never raises."""
        started, worker_id = time.monotonic(), self.process_id
        try:
            with self._active_job(job.id):
                result = self._run(job, worker_id)
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
        )
        with self._destination_locks.hold(str(destination.path)):
            return method.stage(context)

    def _progress_reporter(self, job_id: int, worker_id: str) -> Callable[[int, int], None]:
        """Write progress at most every PROGRESS_INTERVAL; quick jobs only record their end."""
        last = [time.monotonic()]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                self.jobs.report_progress(job_id, worker_id, done, total)

        return report

    def _succeed(self, job: StagingJob, worker_id: str, result: TransferResult, started: float) -> None:
        status = JobStatus.SKIPPED if result.outcome == "skipped" else JobStatus.SUCCEEDED
        finished = self.jobs.finish(
            job.id,
            worker_id,
            status,
            bytes_total=result.bytes,
            bytes_done=result.bytes if status is JobStatus.SUCCEEDED else 0,
            files_total=result.files,
            checksum=result.checksum,
            read_only=result.read_only,
            note=result.note,
        )
        self._log_end(job, status.value, started, finished, f"bytes={result.bytes} checksum={result.checksum}")

    def _fail(self, job: StagingJob, worker_id: str, error: StagingError, started: float) -> None:
        finished = self.jobs.finish(
            job.id, worker_id, JobStatus.FAILED, error_code=error.code, error_reason=error.detail
        )
        self._log_end(job, "failed", started, finished, f"code={error.code} reason={error.detail}")

    def _log_end(self, job: StagingJob, outcome: str, started: float, finished: bool, detail: str) -> None:
        level = log.info if outcome != "failed" else log.warning
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
        if not finished:
            log.warning("job %s: this worker lost its lease; the result above was not recorded", job.id)
