"""Notice rows: users' addresses, the outbox of notices, and what was notified already.

Finding something to tell and recording that it was told happen in one transaction (a conditional
update, then the notice), so a notice is created once even if two processes look at the same time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from .engine import Database
from .jobs import jobs_table, requests_table, utcnow
from .models import JobStatus, StagingContact, StagingNotification

contacts_table: Table = StagingContact.__table__  # type: ignore[assignment]
notices_table: Table = StagingNotification.__table__  # type: ignore[assignment]
jobs, requests, notices = jobs_table.c, requests_table.c, notices_table.c
ACTIVE = (JobStatus.WAITING, JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class Notice:
    id: int
    kind: str
    username: str | None
    email: str | None
    payload: str
    attempts: int
    email_done: bool
    webhook_done: bool


class NoticeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- addresses ------------------------------------------------------------------------------

    def remember_email(self, username: str, email: str) -> None:
        """Keep the address a user's signed-in request carried (the newest wins)."""
        now = utcnow()
        changed = update(contacts_table).where(contacts_table.c.username == username)
        try:
            with self.db.transaction() as connection:
                if connection.execute(changed.values(email=email, updated_at=now)).rowcount == 0:
                    connection.execute(insert(contacts_table).values(username=username, email=email, updated_at=now))
        except IntegrityError:  # another process inserted it meanwhile
            with self.db.transaction() as connection:
                connection.execute(changed.values(email=email, updated_at=now))

    def _email_of(self, connection: Any, username: str | None) -> str | None:
        address: str | None = connection.scalar(
            select(contacts_table.c.email).where(contacts_table.c.username == username)
        )
        return address

    # -- finding what to tell -------------------------------------------------------------------

    def ended_requests(self, since: datetime, limit: int) -> list[str]:
        """Requests made since ``since``, not notified yet, whose jobs are recorded and none still active."""
        active = exists().where(jobs.request_id == requests.id, jobs.status.in_(ACTIVE))
        recorded = exists().where(jobs.request_id == requests.id)  # its jobs are inserted after the request
        query = (
            select(requests.id)
            .where(requests.ended_notified_at.is_(None), requests.created_at >= since, recorded, ~active)
            .order_by(requests.created_at)
            .limit(limit)
        )
        with self.db.transaction() as connection:
            return list(connection.scalars(query).all())

    def expiring(self, by: datetime, longer_than: int, limit: int) -> list[dict[str, Any]]:
        """Unreleased data expiring by ``by``, not told of yet, of jobs whose lifetime exceeds ``longer_than``."""
        query = (
            select(jobs.id, jobs.username, jobs.request_id, jobs.destination, jobs.expires_at)
            .where(
                jobs.status == JobStatus.SUCCEEDED,
                jobs.released_at.is_(None),
                jobs.expiry_notified_at.is_(None),
                jobs.expires_at <= by,
                jobs.lifetime_seconds > longer_than,
            )
            .order_by(jobs.expires_at)
            .limit(limit)
        )
        with self.db.transaction() as connection:
            return [dict(row._mapping) for row in connection.execute(query).all()]

    # -- recording that it was told -------------------------------------------------------------

    def notify_request_ended(
        self, request_id: str, username: str | None, payload: Callable[[], str] | None, kind: str
    ) -> bool:
        """Mark a request's end as notified and queue its notice (``payload`` None: no channel, only marked)."""
        mark = (
            update(requests_table)
            .where(requests.id == request_id, requests.ended_notified_at.is_(None))
            .values(ended_notified_at=utcnow())
        )
        with self.db.transaction() as connection:
            if connection.execute(mark).rowcount != 1:
                return False
            if payload is not None:
                self._queue(connection, kind, username, payload())
        return True

    def notify_expiring(
        self, username: str | None, job_ids: Sequence[int], payload: Callable[[], str] | None, kind: str
    ) -> int:
        """Mark jobs' coming expiry as notified and queue one notice of them; how many were marked here."""
        mark = (
            update(jobs_table)
            .where(jobs.id.in_(job_ids), jobs.expiry_notified_at.is_(None))
            .values(expiry_notified_at=utcnow())
        )
        with self.db.transaction() as connection:
            marked = int(connection.execute(mark).rowcount)
            if marked and payload is not None:
                self._queue(connection, kind, username, payload())
        return marked

    def _queue(self, connection: Any, kind: str, username: str | None, payload: str) -> None:
        now = utcnow()
        connection.execute(
            insert(notices_table).values(
                kind=kind,
                username=username,
                email=self._email_of(connection, username),
                payload=payload,
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )

    # -- delivering -----------------------------------------------------------------------------

    def due(self, now: datetime, limit: int) -> list[Notice]:
        query = (
            select(notices_table)
            .where(notices.done_at.is_(None), notices.next_attempt_at <= now)
            .order_by(notices.next_attempt_at, notices.id)
            .limit(limit)
        )
        with self.db.transaction() as connection:
            rows = connection.execute(query).all()
        return [
            Notice(
                row.id,
                row.kind,
                row.username,
                row.email,
                row.payload,
                row.attempts,
                row.email_done_at is not None,
                row.webhook_done_at is not None,
            )
            for row in rows
        ]

    def delivered(self, notice_id: int, channel: str) -> None:
        """One channel took the notice (``email`` or ``webhook``)."""
        statement = update(notices_table).where(notices.id == notice_id).values({f"{channel}_done_at": utcnow()})
        with self.db.transaction() as connection:
            connection.execute(statement)

    def finish(self, notice_id: int, error: str | None = None) -> None:
        """Every channel took the notice, or it was given up (``error``)."""
        statement = update(notices_table).where(notices.id == notice_id).values(done_at=utcnow(), last_error=error)
        with self.db.transaction() as connection:
            connection.execute(statement)

    def retry_later(self, notice_id: int, at: datetime, error: str) -> None:
        statement = (
            update(notices_table)
            .where(notices.id == notice_id)
            .values(attempts=notices.attempts + 1, next_attempt_at=at, last_error=error)
        )
        with self.db.transaction() as connection:
            connection.execute(statement)

    def all_of(self, username: str) -> list[dict[str, Any]]:
        """Every notice of a user, oldest first (for operators and tests)."""
        query = select(notices_table).where(and_(notices.username == username)).order_by(notices.id)
        with self.db.transaction() as connection:
            return [dict(row._mapping) for row in connection.execute(query).all()]
