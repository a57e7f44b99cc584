"""Job rows: creation, claiming, progress, cancellation, retries, heartbeats, finishing and reading.

Claiming is a conditional UPDATE (``WHERE status = 'queued'``), so two claimers can never both win,
with ``SELECT ... FOR UPDATE SKIP LOCKED`` on MySQL/MariaDB/PostgreSQL so that they do not queue
behind each other's row locks. Every change of a running job is conditional on its claimer still
holding it: a job is finished exactly once. These are the hot paths, so they use SQLAlchemy Core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, Select, Table, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.sql.dml import ReturningUpdate

from .engine import Database
from .models import FINAL_STATUSES, JobStatus, StagingAttempt, StagingJob, StagingLeader, StagingOutput, StagingRequest

DOWNLOAD_METHOD = "direct_download"
jobs_table: Table = StagingJob.__table__  # type: ignore[assignment]
attempts_table: Table = StagingAttempt.__table__  # type: ignore[assignment]
requests_table: Table = StagingRequest.__table__  # type: ignore[assignment]
outputs_table: Table = StagingOutput.__table__  # type: ignore[assignment]
leaders_table: Table = StagingLeader.__table__  # type: ignore[assignment]
HARD_LINK_METHOD = "symlink_copy"  # holds no bytes of its own: a second name of the archive's file
c = jobs_table.c
QUEUED_CHANNEL = "staging_queued"  # payload: how many jobs became claimable
ENDED_CHANNEL = "staging_ended"  # payload: the id of a job that reached a final state

# The statements of a job's hot path, built once. Building and cache-keying a statement costs more
# than running it on SQLite (~100 us against ~70 us for a read by id); their parameters start with
# b_ so that they never clash with column names (an UPDATE without .values() sets the other keys).
_HELD = (c.id == bindparam("b_id"), c.status == JobStatus.RUNNING, c.worker_id == bindparam("b_worker"))
_READ_BY_ID = select(jobs_table).where(c.id == bindparam("b_id"))
_CLAIM_SET = {
    "status": JobStatus.RUNNING,
    "worker_id": bindparam("b_worker"),
    "attempts": c.attempts + 1,
    "started_at": bindparam("b_now"),
    "heartbeat_at": bindparam("b_now"),
    "updated_at": bindparam("b_now"),
    "next_attempt_at": None,
}
_READY = (c.status == JobStatus.QUEUED, or_(c.next_attempt_at.is_(None), c.next_attempt_at <= bindparam("b_now")))
_OLDEST_READY = select(c.id).where(*_READY).order_by(c.id).limit(1)
_OLDEST_READY_LOCKED = _OLDEST_READY.with_for_update(skip_locked=True)
_CLAIM_OLDEST_SQLITE = (
    update(jobs_table)
    .where(c.id == _OLDEST_READY.scalar_subquery())
    .values(**_CLAIM_SET)
    .returning(*jobs_table.columns)
)
_CLAIM_QUEUED = update(jobs_table).where(c.id == bindparam("b_id"), c.status == JobStatus.QUEUED).values(**_CLAIM_SET)
_HELD_AMONG = select(c.id, c.attempts).where(
    c.id.in_(bindparam("b_ids", expanding=True)), c.status == JobStatus.RUNNING, c.worker_id == bindparam("b_worker")
)
_LOCK_HELD_AMONG = (
    select(c.id, c.attempts, c.started_at, c.lifetime_seconds)
    .where(
        c.id.in_(bindparam("b_ids", expanding=True)),
        c.status == JobStatus.RUNNING,
        c.worker_id == bindparam("b_worker"),
    )
    .with_for_update()
)
_UPDATE_HELD = update(jobs_table).where(*_HELD)  # SET: the other keys of the parameters
_INSERT_ATTEMPT = insert(attempts_table)  # the columns: the keys of the parameters
_INSERT_JOB = insert(jobs_table)
_INSERT_JOB_RETURNING_ID = _INSERT_JOB.returning(c.id, sort_by_parameter_order=True)
_CANCEL_ASKED = select(c.cancel_requested).where(c.id == bindparam("b_id"))
# Two claimers at once under a per-user limit would both see a user below it and both claim (MariaDB,
# PostgreSQL: READ COMMITTED); locking one row of staging_leaders first makes them take turns.
CLAIMS_LOCK_TASK = "claims"
_CLAIMS_LOCK = select(leaders_table.c.task).where(leaders_table.c.task == CLAIMS_LOCK_TASK).with_for_update()
_HOLDS = select(c.id).where(*_HELD, c.attempts == bindparam("b_attempt"))
# The rest of a batch: ready jobs of the first one's request, method and user that are small files
# (a size known at acceptance) or hard links (which cost the same whatever their size).
_BATCH_MATES = (
    *_READY,
    c.request_id == bindparam("b_request"),
    c.method == bindparam("b_method"),
    c.username == bindparam("b_user"),
    or_(c.method == HARD_LINK_METHOD, c.bytes_total <= bindparam("b_small")),
)
_RUNNING_OF_USER = select(func.count()).where(c.username == bindparam("b_user"), c.status == JobStatus.RUNNING)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso_utc(value: datetime | None) -> str | None:
    """A naive UTC time from the database as ISO 8601 with a Z (as the API and notices write times)."""
    return None if value is None else value.isoformat(timespec="milliseconds") + "Z"


configure_mappers()  # the models are complete: instrument them now, not at their first use
_JOBS_CLASS = manager_of_class(StagingJob)


def _job(row: Row[Any]) -> StagingJob:
    return _job_of(row._mapping)


def _job_of(values: Mapping[Any, Any]) -> StagingJob:
    """A job record, made as the ORM's own loader makes instances: calling the constructor costs 20
    times more (~100 us), as it sets each of the ~40 columns through the instrumentation."""
    job: StagingJob = _JOBS_CLASS.new_instance()
    instance_dict(job).update(values)
    return job


class _Attempt(NamedTuple):
    """One ended attempt, as ``staging_attempts`` records it."""

    number: int
    started_at: datetime | None
    worker_id: str | None
    outcome: str
    finished_at: datetime


def _oldest_ready(busy: list[str]) -> Select[tuple[int]]:
    """The oldest job that may run now, of a user not in ``busy``."""
    return _OLDEST_READY.where(c.username.not_in(busy)) if busy else _OLDEST_READY


def _claim_oldest_sqlite(busy: list[str]) -> ReturningUpdate[Any]:
    if not busy:
        return _CLAIM_OLDEST_SQLITE
    oldest = _oldest_ready(busy).scalar_subquery()
    return update(jobs_table).where(c.id == oldest).values(**_CLAIM_SET).returning(*jobs_table.columns)


def _read(connection: Connection, job_id: int) -> StagingJob | None:
    row = connection.execute(_READ_BY_ID, {"b_id": job_id}).first()
    return None if row is None else _job(row)


class JobEnd(NamedTuple):
    """How an attempt of a running job ended, for ``JobStore.finish_many``: the arguments of ``finish``."""

    job_id: int
    attempt: int  # its number: the end counts only while this attempt holds the job
    status: JobStatus
    fields: dict[str, Any]
    outputs: Sequence[dict[str, Any]] = ()
    expires: bool = False


@dataclass(frozen=True)
class RequestSummary:
    request_id: str
    counts: dict[str, int]
    bytes_done: int
    bytes_total: int
    dids: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """Rolled up as FTS3 does: active until every job ended, then how they ended."""
        jobs = sum(self.counts.values())
        ended_well = self.counts.get("succeeded", 0) + self.counts.get("skipped", 0)
        if any(self.counts.get(status, 0) for status in ("waiting", "queued", "running")):
            return "active"
        if ended_well == jobs:
            return "succeeded"
        if self.counts.get("cancelled", 0) == jobs:
            return "cancelled"
        if ended_well == 0:
            return "failed"
        return "partially_failed"


@dataclass(frozen=True)
class Holding:
    """Staged data one user holds through one method."""

    username: str | None
    method: str
    bytes: int
    files: int
    jobs: int


@dataclass
class Expired:
    """The jobs of stopped processes: given back to the queue, or failed after their last attempt."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._claims_lock_made = False

    # -- creating and reading -----------------------------------------------------------------

    def create(self, **fields: Any) -> StagingJob:
        values = self._new_values(fields)
        with self.db.transaction() as connection:
            result = connection.execute(_INSERT_JOB, values)
            (job_id,) = result.inserted_primary_key or (None,)
            self._announce_queued(connection, 1 if values.get("status") == JobStatus.QUEUED else 0)
        return StagingJob(id=job_id, **values)

    def create_many(self, rows: Sequence[dict[str, Any]]) -> list[StagingJob]:
        """Insert the jobs of one request together; they come back in ``item_index`` order."""
        if not rows:
            return []
        values = [self._new_values(row) for row in rows]
        keys = {key for row in values for key in row}  # one INSERT for all rows needs the same columns
        values = [{key: row.get(key) for key in keys} for row in values]
        with self.db.transaction() as connection:
            self._announce_queued(connection, sum(row.get("status") == JobStatus.QUEUED for row in values))
            if connection.dialect.insert_executemany_returning_sort_by_parameter_order:  # not MySQL
                ids = connection.scalars(_INSERT_JOB_RETURNING_ID, values).all()
                jobs = [_job_of({**row, "id": job_id}) for row, job_id in zip(values, ids, strict=True)]
                return sorted(jobs, key=lambda job: job.item_index or 0)
            connection.execute(_INSERT_JOB, values)
            request_id = values[0]["request_id"]
            found = connection.execute(
                select(jobs_table).where(c.request_id == request_id).order_by(c.item_index)
            ).all()
        return [_job(row) for row in found]

    @staticmethod
    def _new_values(fields: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        defaults = {"created_at": now, "updated_at": now, "bytes_done": 0, "attempts": 0, "cancel_requested": False}
        return {**defaults, **fields}

    def get(self, job_id: int) -> StagingJob | None:
        with self.db.reading() as connection:
            return _read(connection, job_id)

    def find(
        self,
        *,
        username: str | None,
        status: str | None,
        limit: int,
        offset: int,
        request_id: str | None = None,
        method: str | None = None,
    ) -> tuple[list[StagingJob], int]:
        query = select(jobs_table)
        for column, value in (("username", username), ("status", status), ("request_id", request_id)):
            if value is not None:
                query = query.where(c[column] == value)
        if method is not None:
            query = query.where(c.method == method)
        with self.db.reading() as connection:
            total = connection.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = connection.execute(query.order_by(c.id.desc()).limit(limit).offset(offset)).all()
        return [_job(row) for row in rows], total

    def jobs_of_request(self, request_id: str) -> list[StagingJob]:
        with self.db.reading() as connection:
            rows = connection.execute(select(jobs_table).where(c.request_id == request_id).order_by(c.id)).all()
        return [_job(row) for row in rows]

    def users_of_request(self, request_id: str) -> list[str | None]:
        """The users whose jobs make up a request (one, unless an admin submitted for several)."""
        query = select(c.username).where(c.request_id == request_id).distinct()
        with self.db.reading() as connection:
            return list(connection.scalars(query))

    def summarize_request(self, request_id: str) -> RequestSummary | None:
        query = (
            select(
                c.status,
                func.count(),
                func.coalesce(func.sum(c.bytes_done), 0),
                func.coalesce(func.sum(c.bytes_total), 0),
            )
            .where(c.request_id == request_id)
            .group_by(c.status)
        )
        with self.db.reading() as connection:
            rows = connection.execute(query).all()
            dids = connection.scalar(select(requests_table.c.dids).where(requests_table.c.id == request_id))
        if not rows:
            return None
        return RequestSummary(
            request_id=request_id,
            counts={status: int(count) for status, count, _, _ in rows},
            bytes_done=sum(int(done) for _, _, done, _ in rows),
            bytes_total=sum(int(total) for _, _, _, total in rows),
            dids=dids.split("\n") if dids else [],
        )

    def attempts_of(self, job_id: int) -> list[dict[str, Any]]:
        with self.db.reading() as connection:
            rows = connection.execute(
                select(attempts_table).where(attempts_table.c.job_id == job_id).order_by(attempts_table.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def changed_since(self, since: datetime, after_id: int = 0, limit: int = 500) -> list[StagingJob]:
        """Jobs changed after the position (``since``, ``after_id``) in (updated_at, id) order, oldest first.

        A keyset page: many jobs changed at the same instant (a bulk submission) are paged through
        rather than returned again and again.
        """
        after = or_(c.updated_at > since, and_(c.updated_at == since, c.id > after_id))
        query = select(jobs_table).where(after).order_by(c.updated_at, c.id).limit(limit)
        with self.db.reading() as connection:
            rows = connection.execute(query).all()
        return [_job(row) for row in rows]

    def counts_by_state(self) -> list[tuple[str, str | None, int]]:
        query = select(c.status, c.method, func.count()).group_by(c.status, c.method)
        with self.db.reading() as connection:
            return [(status, method, int(count)) for status, method, count in connection.execute(query).all()]

    # -- requests and idempotency ---------------------------------------------------------------

    def open_request(
        self, request_id: str, username: str | None, idempotency_key: str | None, dids: Sequence[str] = ()
    ) -> str | None:
        """Record a request; with a key already used by this user, the earlier request's id instead."""
        row = {
            "id": request_id,
            "username": username,
            "idempotency_key": idempotency_key,
            "created_at": utcnow(),
            "dids": "\n".join(dids) or None,
        }
        try:
            with self.db.transaction() as connection:
                connection.execute(insert(requests_table).values(**row))
            return None
        except IntegrityError:
            with self.db.transaction() as connection:
                earlier: str | None = connection.scalar(
                    select(requests_table.c.id).where(
                        requests_table.c.username == username, requests_table.c.idempotency_key == idempotency_key
                    )
                )
            return earlier

    # -- claiming -------------------------------------------------------------------------------

    @staticmethod
    def _busy_users(connection: Connection, max_running_per_user: int) -> list[str]:
        if not max_running_per_user:
            return []
        query = (
            select(c.username)
            .where(c.status == JobStatus.RUNNING)
            .group_by(c.username)
            .having(func.count() >= max_running_per_user)
        )
        return [name for (name,) in connection.execute(query).all() if name is not None]

    def claim_next(self, worker_id: str, max_running_per_user: int = 0) -> StagingJob | None:
        """Take the oldest job that may run now for ``worker_id``, or None when there is none.

        Jobs of users already running ``max_running_per_user`` jobs wait, so one user's large
        request does not starve the others. Under a limit, claims take turns (SQLite: its single
        writer; elsewhere a locked row), so two claimers never overshoot it together.
        """
        claim = {"b_worker": worker_id, "b_now": utcnow()}
        take_turns = bool(max_running_per_user) and not self.db.is_sqlite
        if take_turns:
            self._ensure_claims_lock()
        with self.db.transaction() as connection:
            if take_turns:
                connection.execute(_CLAIMS_LOCK)  # each claim sees who is busy after the last one
            busy = self._busy_users(connection, max_running_per_user)
            if self.db.is_sqlite:  # one statement; the database's single writer makes it atomic
                row = connection.execute(_claim_oldest_sqlite(busy), claim).first()
                return None if row is None else _job(row)
            locked = _oldest_ready(busy).with_for_update(skip_locked=True) if busy else _OLDEST_READY_LOCKED
            job_id = connection.scalar(locked, claim)
            if job_id is None:
                return None
            if connection.execute(_CLAIM_QUEUED, {**claim, "b_id": job_id}).rowcount != 1:
                return None
            return _read(connection, job_id)

    def _ensure_claims_lock(self) -> None:
        """The row that claims under a per-user limit lock in turn (made once, by the first claimer)."""
        if self._claims_lock_made:
            return
        try:
            with self.db.transaction() as connection:
                if connection.execute(_CLAIMS_LOCK).first() is None:
                    connection.execute(
                        insert(leaders_table).values(task=CLAIMS_LOCK_TASK, holder="-", lease_until=utcnow())
                    )
        except IntegrityError:
            pass  # another process made it meanwhile
        self._claims_lock_made = True

    def claim_batch(
        self, first: StagingJob, worker_id: str, limit: int, small_bytes: int, max_running_per_user: int = 0
    ) -> list[StagingJob]:
        """Up to ``limit`` more ready jobs like ``first`` (its request, method and user) for ``worker_id``,
        in one statement: the rest of a batch of small files or hard links, run together by one thread.

        Within the per-user limit, where ``first`` already counts among the user's running jobs.
        """
        params = {
            "b_worker": worker_id,
            "b_now": utcnow(),
            "b_request": first.request_id,
            "b_method": first.method,
            "b_user": first.username,
            "b_small": small_bytes,
        }
        take_turns = bool(max_running_per_user) and not self.db.is_sqlite
        if take_turns:
            self._ensure_claims_lock()
        with self.db.transaction() as connection:
            if take_turns:
                connection.execute(_CLAIMS_LOCK)
            if max_running_per_user:
                limit = min(limit, max_running_per_user - int(connection.scalar(_RUNNING_OF_USER, params) or 0))
            if limit <= 0:
                return []
            mates = select(c.id).where(*_BATCH_MATES).order_by(c.id).limit(limit)
            if self.db.is_sqlite:  # one statement; the database's single writer makes it atomic
                claim = update(jobs_table).where(c.id.in_(mates.scalar_subquery())).values(**_CLAIM_SET)
                return [_job(row) for row in connection.execute(claim.returning(*jobs_table.columns), params)]
            ids = list(connection.scalars(mates.with_for_update(skip_locked=True), params))
            if not ids:
                return []
            connection.execute(update(jobs_table).where(c.id.in_(ids), *_READY).values(**_CLAIM_SET), params)
            claimed = select(jobs_table).where(c.id.in_(ids), c.status == JobStatus.RUNNING, c.worker_id == worker_id)
            return [_job(row) for row in connection.execute(claimed.order_by(c.id))]

    def claim(self, job_id: int, worker_id: str) -> StagingJob | None:
        """Take one given job if it is still queued (a direct hand-off to an idle worker slot)."""
        with self.db.transaction() as connection:
            claim = {"b_id": job_id, "b_worker": worker_id, "b_now": utcnow()}
            if connection.execute(_CLAIM_QUEUED, claim).rowcount != 1:
                return None
            return _read(connection, job_id)

    def release(self, job_id: int, worker_id: str) -> bool:
        """Undo a claim before the job started (no attempt is recorded)."""
        statement = (
            update(jobs_table)
            .where(c.id == job_id, c.status == JobStatus.RUNNING, c.worker_id == worker_id)
            .values(status=JobStatus.QUEUED, worker_id=None, heartbeat_at=None, attempts=c.attempts - 1)
        )
        with self.db.transaction() as connection:
            released = _count(connection, statement)
            self._announce_queued(connection, released)
            return released == 1

    def release_orphans(self, worker_id: str, running_here: list[int], claimed_before: datetime) -> int:
        """Release claims of ``worker_id`` that it is not running (a follow-up of the claim failed).

        Such a claim has no heartbeat; released at once, it is not charged an attempt.
        """
        statement = (
            update(jobs_table)
            .where(
                c.worker_id == worker_id,
                c.status == JobStatus.RUNNING,
                c.id.not_in(running_here),
                c.heartbeat_at < claimed_before,
            )
            .values(status=JobStatus.QUEUED, worker_id=None, heartbeat_at=None, attempts=c.attempts - 1)
        )
        with self.db.transaction() as connection:
            return _count(connection, statement)

    def active_count(self, username: str | None) -> int:
        with self.db.reading() as connection:
            return int(
                connection.scalar(
                    select(func.count()).where(
                        c.username == username, c.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))
                    )
                )
                or 0
            )

    def bytes_since(self, username: str | None, since: datetime) -> int:
        """Bytes of a user's jobs created since ``since`` that did not fail or get cancelled."""
        with self.db.reading() as connection:
            return int(
                connection.scalar(
                    select(func.coalesce(func.sum(c.bytes_total), 0)).where(
                        c.username == username,
                        c.created_at >= since,
                        c.status.not_in((JobStatus.FAILED, JobStatus.CANCELLED)),
                    )
                )
                or 0
            )

    def published_identity(self, username: str, destination: str) -> str | None:
        """What the last success at ``destination`` recorded of the file it published (local_copy)."""
        query = (
            select(c.output_identity)
            .where(
                c.username == username,
                c.destination == destination,
                c.status == JobStatus.SUCCEEDED,
                c.output_identity.is_not(None),
            )
            .order_by(c.id.desc())
            .limit(1)
        )
        with self.db.reading() as connection:
            return connection.scalar(query)

    def running_count(self, username: str | None) -> int:
        with self.db.reading() as connection:
            return int(connection.scalar(_RUNNING_OF_USER, {"b_user": username}) or 0)

    # -- while a job runs -----------------------------------------------------------------------

    def report_progress(self, job_id: int, worker_id: str, bytes_done: int, bytes_total: int) -> bool:
        """Record progress and renew the lease; True when a cancellation was asked for."""
        now = utcnow()
        values = {"bytes_done": bytes_done, "bytes_total": bytes_total, "heartbeat_at": now, "updated_at": now}
        with self.db.transaction() as connection:
            connection.execute(_UPDATE_HELD, {"b_id": job_id, "b_worker": worker_id, **values})
            return bool(connection.scalar(_CANCEL_ASKED, {"b_id": job_id}))

    def holds(self, job_id: int, worker_id: str, attempt: int) -> bool:
        """Whether ``worker_id`` still runs attempt number ``attempt`` of the job (the fence before publishing)."""
        with self.db.reading() as connection:
            held = {"b_id": job_id, "b_worker": worker_id, "b_attempt": attempt}
            return connection.scalar(_HOLDS, held) is not None

    def held_among(self, attempts: Sequence[tuple[int, int]], worker_id: str) -> set[int]:
        """Those of the (job id, attempt) pairs whose attempt ``worker_id`` still runs (``holds``, for a batch)."""
        wanted = dict(attempts)
        held = {"b_ids": list(wanted), "b_worker": worker_id}
        with self.db.reading() as connection:
            return {job_id for job_id, attempt in connection.execute(_HELD_AMONG, held) if wanted[job_id] == attempt}

    def heartbeat(self, job_ids: list[int], worker_id: str) -> None:
        if not job_ids:
            return
        with self.db.transaction() as connection:
            connection.execute(
                update(jobs_table).where(c.id.in_(job_ids), c.worker_id == worker_id).values(heartbeat_at=utcnow())
            )

    # -- ending an attempt ----------------------------------------------------------------------

    def finish(
        self,
        job_id: int,
        worker_id: str,
        status: JobStatus,
        *,
        attempt: int,
        outputs: Sequence[dict[str, Any]] = (),
        expires: bool = False,
        **fields: Any,
    ) -> bool:
        """Record the end of attempt ``attempt`` of a running job; False when it no longer holds the job
        (another worker, or another attempt of this one after its lease passed, took it over).

        ``outputs``: what a folder job published (``path``, ``identity``, ``size``), kept for its release.
        ``expires``: what it published expires after its lifetime from now (as it is now: a lifetime
        changed while the job ran counts).
        """
        return self.finish_many(worker_id, [JobEnd(job_id, attempt, status, fields, outputs, expires)])[0]

    def finish_many(self, worker_id: str, ends: Sequence[JobEnd]) -> list[bool]:
        """Record the ends of running jobs in one transaction, a few statements for all (``finish`` of each)."""
        now = utcnow()
        with self.db.transaction() as connection:
            # The rows stay locked until their ends are written (SQLite: the write lock taken at BEGIN),
            # so a lifetime changed meanwhile either counts here or waits and counts after.
            locked = {"b_ids": [end.job_id for end in ends], "b_worker": worker_id}
            attempts_held = {end.job_id: end.attempt for end in ends}
            held = {
                job.id: job
                for job in connection.execute(_LOCK_HELD_AMONG, locked)
                if job.attempts == attempts_held[job.id]
            }
            updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}  # one executemany per set of columns
            attempts: list[dict[str, Any]] = []
            outputs: list[dict[str, Any]] = []
            for end in ends:
                if (job := held.get(end.job_id)) is None:
                    continue
                values = {"b_id": end.job_id, "b_worker": worker_id, **end.fields}
                if end.expires:
                    lifetime = job.lifetime_seconds
                    values["expires_at"] = now + timedelta(seconds=lifetime) if lifetime else None
                values.update(status=end.status, finished_at=now, updated_at=now, heartbeat_at=None)
                updates.setdefault(tuple(values), []).append(values)
                attempt = _Attempt(job.attempts, job.started_at, worker_id, end.status.value, now)
                attempts.append(_attempt_row(end.job_id, attempt, end.fields))
                outputs += [{"job_id": end.job_id, **row} for row in end.outputs]
            for rows in updates.values():
                connection.execute(_UPDATE_HELD, rows)
            if attempts:
                connection.execute(_INSERT_ATTEMPT, attempts)
            if outputs:
                connection.execute(insert(outputs_table), outputs)
            self._announce_ended(connection, list(held))
        return [end.job_id in held for end in ends]

    def requeue(
        self,
        job_id: int,
        worker_id: str,
        *,
        attempt: int,
        delay: float,
        error_code: str,
        error_reason: str,
        refund: bool = False,
    ) -> bool:
        """End attempt ``attempt`` and put the job back in the queue, to start again after ``delay``."""
        now = utcnow()
        values: dict[str, Any] = {
            "status": JobStatus.QUEUED,
            "worker_id": None,
            "heartbeat_at": None,
            "updated_at": now,
            "next_attempt_at": now + timedelta(seconds=delay),
            "error_code": error_code,
            "error_reason": error_reason,
        }
        if refund:  # handed back at shutdown: this attempt does not count
            values["attempts"] = c.attempts - 1
        statement = (
            update(jobs_table)
            .where(c.id == job_id, c.status == JobStatus.RUNNING, c.worker_id == worker_id, c.attempts == attempt)
            .values(**values)
        )
        with self.db.transaction() as connection:
            requeued = _count(connection, statement) == 1
            if requeued:
                outcome = "handed_back" if refund else "retry"
                fields = {"error_code": error_code, "error_reason": error_reason}
                self._record_attempt(connection, job_id, worker_id, outcome, fields, now)
                self._announce_queued(connection, 1 if delay <= 0 else 0)
        return requeued

    @classmethod
    def _record_attempt(
        cls,
        connection: Connection,
        job_id: int,
        worker_id: str | None,
        outcome: str,
        fields: dict[str, Any],
        now: datetime,
    ) -> None:
        job = connection.execute(select(c.attempts, c.started_at).where(c.id == job_id)).first()
        attempt, started = (job.attempts, job.started_at) if job is not None else (0, None)
        cls._insert_attempt(connection, job_id, _Attempt(attempt, started, worker_id, outcome, now), fields)

    @staticmethod
    def _insert_attempt(connection: Connection, job_id: int, attempt: _Attempt, fields: dict[str, Any]) -> None:
        connection.execute(_INSERT_ATTEMPT, _attempt_row(job_id, attempt, fields))

    # -- cancelling and retrying ----------------------------------------------------------------

    def cancel(self, job_ids: Sequence[int]) -> list[int]:
        """Queued jobs end at once; running ones are asked to stop (their worker does it).

        Returns the queued jobs cancelled after an earlier attempt, whose temporaries may remain.
        """
        now = utcnow()
        with self.db.transaction() as connection:
            tried = connection.scalars(
                select(c.id).where(c.id.in_(job_ids), c.status == JobStatus.QUEUED, c.attempts > 0).with_for_update()
            ).all()
            if self.db.notifies:  # which of them end here, for the processes waiting on them
                self._announce_ended(connection, self._not_running(connection, job_ids))
            connection.execute(
                update(jobs_table)
                .where(c.id.in_(job_ids), c.status.in_((JobStatus.QUEUED, JobStatus.WAITING)))
                .values(
                    status=JobStatus.CANCELLED,
                    error_code="job_cancelled",
                    error_reason="cancelled before it started",
                    finished_at=now,
                    updated_at=now,
                )
            )
            connection.execute(
                update(jobs_table)
                .where(c.id.in_(job_ids), c.status == JobStatus.RUNNING)
                .values(cancel_requested=True, updated_at=now)
            )
        return list(tried)

    # -- waiting for replication ----------------------------------------------------------------

    def waiting(self, limit: int) -> list[StagingJob]:
        """Jobs waiting for their replica, the longest waiting first."""
        query = select(jobs_table).where(c.status == JobStatus.WAITING).order_by(c.id).limit(limit)
        with self.db.reading() as connection:
            return [_job(row) for row in connection.execute(query).all()]

    def stop_waiting(self, job_ids: Sequence[int]) -> int:
        """Queue waiting jobs whose replica arrived; returns how many this call queued."""
        if not job_ids:
            return 0
        statement = (
            update(jobs_table)
            .where(c.id.in_(job_ids), c.status == JobStatus.WAITING)
            .values(status=JobStatus.QUEUED, updated_at=utcnow())
        )
        with self.db.transaction() as connection:
            queued = _count(connection, statement)
            self._announce_queued(connection, queued)
            return queued

    def fail_waiting(self, job_ids: Sequence[int], error_code: str, error_reason: str) -> int:
        """End waiting jobs whose replica will not come (their rule is stuck, or they waited too long)."""
        if not job_ids:
            return 0
        now = utcnow()
        statement = (
            update(jobs_table)
            .where(c.id.in_(job_ids), c.status == JobStatus.WAITING)
            .values(
                status=JobStatus.FAILED,
                error_code=error_code,
                error_reason=error_reason,
                finished_at=now,
                updated_at=now,
            )
        )
        with self.db.transaction() as connection:
            if self.db.notifies:
                waiting = select(c.id).where(c.id.in_(job_ids), c.status == JobStatus.WAITING).with_for_update()
                self._announce_ended(connection, list(connection.scalars(waiting)))
            return _count(connection, statement)

    def retry(self, job_id: int) -> bool:
        """Queue a failed or cancelled job again, with a fresh count of attempts."""
        now = utcnow()
        statement = (
            update(jobs_table)
            .where(c.id == job_id, c.status.in_((JobStatus.FAILED, JobStatus.CANCELLED)))
            .values(
                status=JobStatus.QUEUED,
                attempts=0,
                cancel_requested=False,
                error_code=None,
                error_reason=None,
                next_attempt_at=None,
                finished_at=None,
                bytes_done=0,
                updated_at=now,
            )
        )
        with self.db.transaction() as connection:
            queued = _count(connection, statement)
            self._announce_queued(connection, queued)
            return queued == 1

    # -- lifetimes and releases -----------------------------------------------------------------

    def expired(self, now: datetime, limit: int) -> list[StagingJob]:
        """Jobs whose staged data expired and is not released yet, the longest expired first."""
        query = (
            select(jobs_table)
            .where(c.expires_at <= now, c.released_at.is_(None), c.status == JobStatus.SUCCEEDED)
            .order_by(c.expires_at, c.id)
            .limit(limit)
        )
        with self.db.reading() as connection:
            return [_job(row) for row in connection.execute(query).all()]

    def outputs_of(self, job_id: int) -> list[tuple[str, str | None, int | None]]:
        """What a folder job published: (path inside the folder, identity of a file or None, size)."""
        query = select(outputs_table.c.path, outputs_table.c.identity, outputs_table.c.size).where(
            outputs_table.c.job_id == job_id
        )
        with self.db.reading() as connection:
            return [(path, identity, size) for path, identity, size in connection.execute(query).all()]

    def mark_released(self, job_id: int, reason: str, note: str | None) -> bool:
        """Record that a job's data was released; False when it already was (by another release)."""
        now = utcnow()
        statement = (
            update(jobs_table)
            .where(c.id == job_id, c.released_at.is_(None))
            .values(released_at=now, release_reason=reason, release_note=note, updated_at=now)
        )
        with self.db.transaction() as connection:
            released = _count(connection, statement) == 1
            if released:
                connection.execute(delete(outputs_table).where(outputs_table.c.job_id == job_id))
        return released

    def postpone_expiry(self, job_id: int, until: datetime) -> None:
        """Try an expiry again at ``until`` (its data could not be reached)."""
        statement = update(jobs_table).where(c.id == job_id, c.released_at.is_(None)).values(expires_at=until)
        with self.db.transaction() as connection:
            connection.execute(statement)

    def set_lifetime(self, job_id: int, seconds: int, expires_at: datetime | None) -> bool:
        """Give a job a new lifetime: a finished one a new expiry; False when its data was released."""
        now = utcnow()
        statement = (
            update(jobs_table)
            .where(c.id == job_id, c.released_at.is_(None))
            .values(
                lifetime_seconds=seconds,
                expires_at=case((c.status == JobStatus.SUCCEEDED, expires_at), else_=None),
                expiry_notified_at=None,  # a new expiry is told of again
                updated_at=now,
            )
        )
        with self.db.transaction() as connection:
            return _count(connection, statement) == 1

    def extend_holder(self, username: str, destination: str, expires_at: datetime | None) -> int:
        """Make the data a user holds at ``destination`` last at least until ``expires_at`` (None: until released).

        A request that finds the data staged already (skipped) keeps it for as long as it asked.
        """
        later = c.expires_at.is_not(None) if expires_at is None else c.expires_at < expires_at
        statement = (
            update(jobs_table)
            .where(
                c.username == username,
                c.destination == destination,
                c.status == JobStatus.SUCCEEDED,
                c.released_at.is_(None),
                later,
            )
            .values(expires_at=expires_at, expiry_notified_at=None, updated_at=utcnow())
        )
        with self.db.transaction() as connection:
            return _count(connection, statement)

    def held_bytes(self, username: str | None) -> int:
        """Bytes a user holds or will hold: unreleased successes and active jobs, hard links excepted."""
        active = (JobStatus.WAITING, JobStatus.QUEUED, JobStatus.RUNNING)
        held = or_(c.status.in_(active), and_(c.status == JobStatus.SUCCEEDED, c.released_at.is_(None)))
        query = select(func.coalesce(func.sum(c.bytes_total), 0)).where(
            c.username == username, c.method.not_in((HARD_LINK_METHOD, DOWNLOAD_METHOD)), held
        )
        with self.db.reading() as connection:
            return int(connection.scalar(query) or 0)

    def holdings(
        self, username: str | None, *, all_users: bool = False, expiring_by: datetime | None = None
    ) -> list[Holding]:
        """Unreleased staged data by user and method (hard links with zero bytes); ``expiring_by``: only what
        expires by then. ``all_users``: every user's, else ``username``'s."""
        conditions = [c.status == JobStatus.SUCCEEDED, c.released_at.is_(None), c.method != DOWNLOAD_METHOD]
        if not all_users:
            conditions.append(c.username == username)
        if expiring_by is not None:
            conditions.append(c.expires_at <= expiring_by)
        held_bytes = case((c.method == HARD_LINK_METHOD, 0), else_=func.coalesce(c.bytes_total, 0))
        query = (
            select(c.username, c.method, func.sum(held_bytes), func.sum(func.coalesce(c.files_total, 1)), func.count())
            .where(*conditions)
            .group_by(c.username, c.method)
        )
        with self.db.reading() as connection:
            rows = connection.execute(query).all()
        return [
            Holding(user, str(method), int(size or 0), int(files or 0), int(jobs))
            for user, method, size, files, jobs in rows
        ]

    def lead(self, task: str, holder: str, seconds: float) -> bool:
        """Take or keep the lead of ``task`` for ``seconds``; False while another process holds it."""
        now = utcnow()
        until = now + timedelta(seconds=seconds)
        taken = or_(leaders_table.c.holder == holder, leaders_table.c.lease_until < now)
        statement = (
            update(leaders_table).where(leaders_table.c.task == task, taken).values(holder=holder, lease_until=until)
        )
        with self.db.transaction() as connection:
            if _count(connection, statement) == 1:
                return True
            if connection.scalar(select(leaders_table.c.task).where(leaders_table.c.task == task)) is not None:
                return False
        try:
            with self.db.transaction() as connection:
                connection.execute(insert(leaders_table).values(task=task, holder=holder, lease_until=until))
            return True
        except IntegrityError:
            return False

    def step_down(self, task: str, holder: str) -> None:
        """Give up the lead of ``task`` (at shutdown), so another process takes it at once."""
        statement = delete(leaders_table).where(leaders_table.c.task == task, leaders_table.c.holder == holder)
        with self.db.transaction() as connection:
            connection.execute(statement)

    # -- dead workers ---------------------------------------------------------------------------

    def requeue_expired(self, lease_seconds: float, max_attempts: int) -> Expired:
        """Give the jobs of dead workers back to the queue, or fail them after too many attempts."""
        now = utcnow()
        expired = (c.status == JobStatus.RUNNING, c.heartbeat_at < now - timedelta(seconds=lease_seconds))
        reason = "the process running this job stopped"
        result = Expired()
        with self.db.transaction() as connection:
            rows = connection.execute(select(c.id, c.worker_id, c.method, c.attempts).where(*expired)).all()
            for job_id, worker_id, method, attempts in rows:
                give_up = method == DOWNLOAD_METHOD or attempts >= max_attempts
                values: dict[str, Any] = (
                    {"status": JobStatus.FAILED, "finished_at": now}
                    if give_up
                    else {"status": JobStatus.QUEUED, "worker_id": None, "heartbeat_at": None}
                )
                changed = connection.execute(
                    update(jobs_table)
                    .where(c.id == job_id, c.worker_id == worker_id, *expired)
                    .values(error_code="interrupted", error_reason=reason, updated_at=now, **values)
                ).rowcount
                if changed:
                    (result.failed if give_up else result.requeued).append(job_id)
                    fields = {"error_code": "interrupted", "error_reason": reason}
                    self._record_attempt(connection, job_id, worker_id, "interrupted", fields, now)
            self._announce_queued(connection, len(result.requeued))
            self._announce_ended(connection, result.failed)
        return result

    # -- telling other processes (see wakeups) -----------------------------------------------

    def last_change(self) -> tuple[int | None, datetime | None]:
        """The newest job and the time of the latest change to any job: both indexed, so cheap to poll."""
        with self.db.reading() as connection:
            row = connection.execute(select(func.max(c.id), func.max(c.updated_at))).one()
            return row[0], row[1]

    def ended_among(self, job_ids: Sequence[int]) -> list[int]:
        """Those of ``job_ids`` that reached a final state."""
        if not job_ids:
            return []
        query = select(c.id).where(c.id.in_(job_ids), c.status.in_(FINAL_STATUSES))
        with self.db.reading() as connection:
            return list(connection.scalars(query))

    def _announce_queued(self, connection: Connection, count: int) -> None:
        if count:
            self.db.announce(connection, QUEUED_CHANNEL, str(count))

    def _announce_ended(self, connection: Connection, job_ids: Sequence[int]) -> None:
        for job_id in job_ids:
            self.db.announce(connection, ENDED_CHANNEL, str(job_id))

    @staticmethod
    def _not_running(connection: Connection, job_ids: Sequence[int]) -> list[int]:
        query = select(c.id).where(c.id.in_(job_ids), c.status.in_((JobStatus.QUEUED, JobStatus.WAITING)))
        return list(connection.scalars(query.with_for_update()))


def _attempt_row(job_id: int, attempt: _Attempt, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "attempt": attempt.number,
        "worker_id": attempt.worker_id,
        "outcome": attempt.outcome,
        "error_code": fields.get("error_code"),
        "error_reason": fields.get("error_reason"),
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
    }


def _count(connection: Connection, statement: Any) -> int:
    return int(connection.execute(statement).rowcount)
