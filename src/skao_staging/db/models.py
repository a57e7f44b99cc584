"""Tables. ``staging_jobs`` keeps the seed's column names beside the job-machine columns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Microseconds on MySQL/MariaDB too; all times are naive UTC.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
JobId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


class JobStatus(StrEnum):
    WAITING = "waiting"  # for its data to be replicated to this site; then queued
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self not in (JobStatus.WAITING, JobStatus.QUEUED, JobStatus.RUNNING)


FINAL_STATUSES = tuple(status.value for status in JobStatus if status.is_final)


class Base(DeclarativeBase):
    pass


class StagingJob(Base):
    __tablename__ = "staging_jobs"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    username: Mapped[str | None] = mapped_column(String(255))
    method: Mapped[str | None] = mapped_column(String(32))
    local_path_on_storage: Mapped[str | None] = mapped_column(Text)
    relative_path: Mapped[str | None] = mapped_column(Text)
    destination: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_reason: Mapped[str | None] = mapped_column(Text)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    files_total: Mapped[int | None] = mapped_column(Integer)
    checksum: Mapped[str | None] = mapped_column(String(80))
    read_only: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    item_index: Mapped[int | None] = mapped_column(Integer)
    owner_uid: Mapped[int | None] = mapped_column(Integer)
    owner_gid: Mapped[int | None] = mapped_column(Integer)
    did: Mapped[str | None] = mapped_column(String(300))  # the Rucio DID staged, instead of an archive path
    replication_rule: Mapped[str | None] = mapped_column(String(64))  # the Rucio rule bringing it to this site
    wait_until: Mapped[datetime | None] = mapped_column(Timestamp)  # a waiting job fails after this
    # what the source looked up when the job was accepted (a DID's replica), planned from when it runs
    source_pin: Mapped[str | None] = mapped_column(Text)
    # device:inode:mtime_ns of the file a local_copy published, to recognise it (and repair it) later
    output_identity: Mapped[str | None] = mapped_column(String(80))
    # lifetime of what the job publishes (0: kept until released); expires_at is set when it publishes
    lifetime_seconds: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime | None] = mapped_column(Timestamp)
    released_at: Mapped[datetime | None] = mapped_column(Timestamp)
    release_reason: Mapped[str | None] = mapped_column(String(32))  # expired, released by user/admin
    release_note: Mapped[str | None] = mapped_column(Text)  # what the release kept, and why
    expiry_notified_at: Mapped[datetime | None] = mapped_column(Timestamp)  # the user was told it expires soon
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (
        Index("ix_staging_jobs_status_id", "status", "id"),
        Index("ix_staging_jobs_username_id", "username", "id"),
        Index("ix_staging_jobs_updated_at", "updated_at"),
        Index("ix_staging_jobs_expires_at", "expires_at"),
        {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"},
    )


class StagingRequest(Base):
    """A submission of one or more items; remembered for its Idempotency-Key."""

    __tablename__ = "staging_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str | None] = mapped_column(String(255))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    dids: Mapped[str | None] = mapped_column(Text)  # the DIDs asked for, one a line (a dataset, before expansion)
    ended_notified_at: Mapped[datetime | None] = mapped_column(Timestamp)  # its end was notified

    __table_args__ = (
        UniqueConstraint("username", "idempotency_key", name="uq_staging_requests_idempotency"),
        {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"},
    )


class StagingAttempt(Base):
    """One attempt at a job and how it ended, as FTS3 keeps them."""

    __tablename__ = "staging_attempts"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(BigInteger, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = ({"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"},)


class StagingOutput(Base):
    """One file or folder a folder job published, as it was then: what its release may remove."""

    __tablename__ = "staging_outputs"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(BigInteger, index=True)
    path: Mapped[str] = mapped_column(Text)  # inside the staged folder, "/"-separated
    identity: Mapped[str | None] = mapped_column(String(80))  # device:inode:mtime_ns of a file; None: a folder
    size: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = ({"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"},)


class StagingLeader(Base):
    """Who does a task that one process at a time may do (the reaper), until when."""

    __tablename__ = "staging_leaders"

    task: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    lease_until: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = ({"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"},)


class StagingContact(Base):
    """Where a user's notices go: the e-mail address their last signed-in request carried."""

    __tablename__ = "staging_contacts"

    username: Mapped[str] = mapped_column(String(255), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = ({"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"},)


class StagingNotification(Base):
    """A notice to deliver (by e-mail and to the webhook), kept until each channel took it or it was given up."""

    __tablename__ = "staging_notifications"

    id: Mapped[int] = mapped_column(JobId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # request.ended, data.expiring
    username: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, as signed and sent
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    email_done_at: Mapped[datetime | None] = mapped_column(Timestamp)
    webhook_done_at: Mapped[datetime | None] = mapped_column(Timestamp)
    done_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_staging_notifications_pending", "done_at", "next_attempt_at"),
        {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"},
    )
