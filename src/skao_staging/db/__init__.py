"""The job database: tables, engine and sessions, job functions, migrations."""

from .engine import Database
from .jobs import Expired, Holding, JobEnd, JobStore, RequestSummary, iso_utc, utcnow
from .migrate import (
    SchemaNotCurrent,
    current_revision,
    head_revision,
    prepare_database,
    upgrade,
    wait_for_database,
)
from .models import FINAL_STATUSES, JobStatus, StagingJob
from .notices import Notice, NoticeStore

__all__ = [
    "FINAL_STATUSES",
    "Database",
    "Expired",
    "Holding",
    "JobEnd",
    "JobStatus",
    "JobStore",
    "Notice",
    "NoticeStore",
    "RequestSummary",
    "SchemaNotCurrent",
    "StagingJob",
    "current_revision",
    "head_revision",
    "iso_utc",
    "prepare_database",
    "upgrade",
    "utcnow",
    "wait_for_database",
]
