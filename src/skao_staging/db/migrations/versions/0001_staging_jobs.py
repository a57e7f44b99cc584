"""staging_jobs: the seed's columns and the job machine's.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
JOB_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staging_jobs",
        sa.Column("id", JOB_ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("method", sa.String(32)),
        sa.Column("local_path_on_storage", sa.Text()),
        sa.Column("relative_path", sa.Text()),
        sa.Column("destination", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_reason", sa.Text()),
        sa.Column("bytes_total", sa.BigInteger()),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("files_total", sa.Integer()),
        sa.Column("checksum", sa.String(80)),
        sa.Column("read_only", sa.Boolean()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("heartbeat_at", TIMESTAMP),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP),
        sa.Column("finished_at", TIMESTAMP),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    op.create_index("ix_staging_jobs_request_id", "staging_jobs", ["request_id"])
    op.create_index("ix_staging_jobs_status_id", "staging_jobs", ["status", "id"])
    op.create_index("ix_staging_jobs_username_id", "staging_jobs", ["username", "id"])


def downgrade() -> None:
    op.drop_table("staging_jobs")
