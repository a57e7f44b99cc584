"""Job rows: creation, claiming, progress, heartbeats, finishing and reading.

Claiming is a conditional UPDATE (``WHERE status = 'queued'``), so two claimers can never both win,
with ``SELECT ... FOR UPDATE SKIP LOCKED`` on MySQL/MariaDB/PostgreSQL so that they do not queue
behind each other's row locks. Finishing is conditional on the claimer still holding the job: a job
is finished exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, func, select, update

from .engine import Database
from .models import JobStatus, StagingJob

DOWNLOAD_METHOD = "direct_download"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, **fields: Any) -> StagingJob:
        now = utcnow()
        job = StagingJob(**{"created_at": now, "updated_at": now, "bytes_done": 0, "attempts": 0, **fields})
        with self.db.session() as session:
            session.add(job)
        return job

    def get(self, job_id: int) -> StagingJob | None:
        with self.db.session() as session:
            return session.get(StagingJob, job_id)

    def find(
        self, *, username: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[StagingJob], int]:
        query = select(StagingJob)
        if username is not None:
            query = query.where(StagingJob.username == username)
        if status is not None:
            query = query.where(StagingJob.status == status)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(query.order_by(StagingJob.id.desc()).limit(limit).offset(offset)).all()
        return list(rows), total

    def claim_next(self, worker_id: str) -> StagingJob | None:
        """Take the oldest queued job for ``worker_id``, or None when there is none."""
        with self.db.session() as session:
            candidate = (
                select(StagingJob.id).where(StagingJob.status == JobStatus.QUEUED).order_by(StagingJob.id).limit(1)
            )
            if not self.db.is_sqlite:
                candidate = candidate.with_for_update(skip_locked=True)
            job_id = session.scalar(candidate)
            if job_id is None:
                return None
            now = utcnow()
            claimed = self._update(
                session,
                update(StagingJob)
                .where(StagingJob.id == job_id, StagingJob.status == JobStatus.QUEUED)
                .values(
                    status=JobStatus.RUNNING,
                    worker_id=worker_id,
                    attempts=StagingJob.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    updated_at=now,
                ),
            )
            return session.get(StagingJob, job_id) if claimed else None

    def report_progress(self, job_id: int, worker_id: str, bytes_done: int, bytes_total: int) -> None:
        now = utcnow()
        with self.db.session() as session:
            session.execute(
                update(StagingJob)
                .where(StagingJob.id == job_id, StagingJob.worker_id == worker_id)
                .values(bytes_done=bytes_done, bytes_total=bytes_total, heartbeat_at=now, updated_at=now)
            )

    def heartbeat(self, job_ids: list[int], worker_id: str) -> None:
        if not job_ids:
            return
        with self.db.session() as session:
            session.execute(
                update(StagingJob)
                .where(StagingJob.id.in_(job_ids), StagingJob.worker_id == worker_id)
                .values(heartbeat_at=utcnow())
            )

    def finish(self, job_id: int, worker_id: str, status: JobStatus, **fields: Any) -> bool:
        """Record the end of a running job; False when this worker no longer holds it."""
        now = utcnow()
        with self.db.session() as session:
            return self._update(
                session,
                update(StagingJob)
                .where(
                    StagingJob.id == job_id,
                    StagingJob.status == JobStatus.RUNNING,
                    StagingJob.worker_id == worker_id,
                )
                .values(status=status, finished_at=now, updated_at=now, heartbeat_at=None, **fields),
            )

    def requeue_expired(self, lease_seconds: float, max_attempts: int) -> int:
        """Give the jobs of dead workers back to the queue, or fail them after too many attempts."""
        expired_before = utcnow() - timedelta(seconds=lease_seconds)
        expired = (
            StagingJob.status == JobStatus.RUNNING,
            StagingJob.heartbeat_at < expired_before,
        )
        now = utcnow()
        with self.db.session() as session:
            failed = self._count(
                session.execute(
                    update(StagingJob)
                    .where(*expired)
                    .where((StagingJob.method == DOWNLOAD_METHOD) | (StagingJob.attempts >= max_attempts))
                    .values(
                        status=JobStatus.FAILED,
                        error_code="interrupted",
                        error_reason="the process running this job stopped",
                        finished_at=now,
                        updated_at=now,
                    )
                )
            )
            requeued = self._count(
                session.execute(
                    update(StagingJob)
                    .where(*expired)
                    .values(status=JobStatus.QUEUED, worker_id=None, heartbeat_at=None, updated_at=now)
                )
            )
        return failed + requeued

    @staticmethod
    def _count(result: Any) -> int:
        assert isinstance(result, CursorResult)
        return int(result.rowcount)

    def _update(self, session: Any, statement: Any) -> bool:
        return self._count(session.execute(statement)) == 1
