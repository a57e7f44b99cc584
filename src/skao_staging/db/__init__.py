"""The job database: tables, engine and sessions, job functions, migrations."""

from .engine import Database
from .jobs import JobStore, utcnow
from .migrate import current_revision, head_revision, upgrade
from .models import FINAL_STATUSES, JobStatus, StagingJob

__all__ = [
    "FINAL_STATUSES",
    "Database",
    "JobStatus",
    "JobStore",
    "StagingJob",
    "current_revision",
    "head_revision",
    "upgrade",
    "utcnow",
]
