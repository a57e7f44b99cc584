"""The job database: tables, engine and sessions, job functions, migrations."""

from .engine import Database
from .jobs import JobStore, RequestSummary, utcnow
from .migrate import current_revision, head_revision, upgrade
from .models import FINAL_STATUSES, JobStatus, StagingJob

__all__ = [
    "FINAL_STATUSES",
    "Database",
    "JobStatus",
    "JobStore",
    "RequestSummary",
    "StagingJob",
    "current_revision",
    "head_revision",
    "upgrade",
    "utcnow",
]
