"""Job rows: creation, claiming, progress, heartbeats, finishing and reading.

Claiming is a conditional UPDATE (``WHERE status = 'queued'``), so two claimers can never both win,
with ``SELECT ... FOR UPDATE SKIP LOCKED`` on MySQL/MariaDB/PostgreSQL so that they do not queue
behind each other's row locks. Finishing is conditional on the claimer still holding the job: a job
is finished exactly once. These are the hot paths, so they are written with SQLAlchemy Core.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Table, func, select, update

from .engine import Database
from .models import JobStatus, StagingJob

DOWNLOAD_METHOD = "direct_download"
jobs_table: Table = StagingJob.__table__  # type: ignore[assignment]
c = jobs_table.c


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _job(row: Row[Any]) -> StagingJob:
    return StagingJob(**row._mapping)


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, **fields: Any) -> StagingJob:
        now = utcnow()
        values = {"created_at": now, "updated_at": now, "bytes_done": 0, "attempts": 0, **fields}
        with self.db.transaction() as connection:
            result = connection.execute(jobs_table.insert().values(**values))
            (job_id,) = result.inserted_primary_key or (None,)
        return StagingJob(id=job_id, **values)

    def get(self, job_id: int) -> StagingJob | None:
        with self.db.transaction() as connection:
            row = connection.execute(select(jobs_table).where(c.id == job_id)).first()
        return None if row is None else _job(row)

    def find(
        self, *, username: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[StagingJob], int]:
        query = select(jobs_table)
        if username is not None:
            query = query.where(c.username == username)
        if status is not None:
            query = query.where(c.status == status)
        with self.db.transaction() as connection:
            total = connection.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = connection.execute(query.order_by(c.id.desc()).limit(limit).offset(offset)).all()
        return [_job(row) for row in rows], total

    @staticmethod
    def _claim_values(worker_id: str) -> dict[str, Any]:
        now = utcnow()
        return {
            "status": JobStatus.RUNNING,
            "worker_id": worker_id,
            "attempts": c.attempts + 1,
            "started_at": now,
            "heartbeat_at": now,
            "updated_at": now,
        }

    def claim_next(self, worker_id: str) -> StagingJob | None:
        """Take the oldest queued job for ``worker_id``, or None when there is none."""
        claim = self._claim_values(worker_id)
        oldest = select(c.id).where(c.status == JobStatus.QUEUED).order_by(c.id).limit(1)
        with self.db.transaction() as connection:
            if self.db.is_sqlite:  # one statement; the database's single writer makes it atomic
                statement = update(jobs_table).where(c.id == oldest.scalar_subquery()).values(**claim)
                row = connection.execute(statement.returning(*jobs_table.columns)).first()
                return None if row is None else _job(row)
            job_id = connection.scalar(oldest.with_for_update(skip_locked=True))
            if job_id is None:
                return None
            statement = update(jobs_table).where(c.id == job_id, c.status == JobStatus.QUEUED).values(**claim)
            if connection.execute(statement).rowcount != 1:
                return None
            row = connection.execute(select(jobs_table).where(c.id == job_id)).first()
        return None if row is None else _job(row)

    def claim(self, job_id: int, worker_id: str) -> StagingJob | None:
        """Take one given job if it is still queued (a direct hand-off to an idle worker slot)."""
        statement = (
            update(jobs_table)
            .where(c.id == job_id, c.status == JobStatus.QUEUED)
            .values(**self._claim_values(worker_id))
        )
        with self.db.transaction() as connection:
            if connection.execute(statement).rowcount != 1:
                return None
            row = connection.execute(select(jobs_table).where(c.id == job_id)).first()
        return None if row is None else _job(row)

    def report_progress(self, job_id: int, worker_id: str, bytes_done: int, bytes_total: int) -> None:
        now = utcnow()
        with self.db.transaction() as connection:
            connection.execute(
                update(jobs_table)
                .where(c.id == job_id, c.worker_id == worker_id)
                .values(bytes_done=bytes_done, bytes_total=bytes_total, heartbeat_at=now, updated_at=now)
            )

    def heartbeat(self, job_ids: list[int], worker_id: str) -> None:
        if not job_ids:
            return
        with self.db.transaction() as connection:
            connection.execute(
                update(jobs_table).where(c.id.in_(job_ids), c.worker_id == worker_id).values(heartbeat_at=utcnow())
            )

    def finish(self, job_id: int, worker_id: str, status: JobStatus, **fields: Any) -> bool:
        """Record the end of a running job; False when this worker no longer holds it."""
        now = utcnow()
        statement = (
            update(jobs_table)
            .where(c.id == job_id, c.status == JobStatus.RUNNING, c.worker_id == worker_id)
            .values(status=status, finished_at=now, updated_at=now, heartbeat_at=None, **fields)
        )
        with self.db.transaction() as connection:
            return _count(connection, statement) == 1

    def requeue_expired(self, lease_seconds: float, max_attempts: int) -> int:
        """Give the jobs of dead workers back to the queue, or fail them after too many attempts."""
        now = utcnow()
        expired = (c.status == JobStatus.RUNNING, c.heartbeat_at < now - timedelta(seconds=lease_seconds))
        give_up = (
            update(jobs_table)
            .where(*expired)
            .where((c.method == DOWNLOAD_METHOD) | (c.attempts >= max_attempts))
            .values(
                status=JobStatus.FAILED,
                error_code="interrupted",
                error_reason="the process running this job stopped",
                finished_at=now,
                updated_at=now,
            )
        )
        requeue = (
            update(jobs_table)
            .where(*expired)
            .values(status=JobStatus.QUEUED, worker_id=None, heartbeat_at=None, updated_at=now)
        )
        with self.db.transaction() as connection:
            return _count(connection, give_up) + _count(connection, requeue)


def _count(connection: Connection, statement: Any) -> int:
    return int(connection.execute(statement).rowcount)
