"""Lifetimes: a job's lifetime, expiry and release; the outputs of folder jobs; task leaders (the reaper).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
JOB_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.add_column(sa.Column("lifetime_seconds", sa.BigInteger()))
        batch.add_column(sa.Column("expires_at", TIMESTAMP))
        batch.add_column(sa.Column("released_at", TIMESTAMP))
        batch.add_column(sa.Column("release_reason", sa.String(32)))
        batch.add_column(sa.Column("release_note", sa.Text()))
        batch.create_index("ix_staging_jobs_expires_at", ["expires_at"])
    op.create_table(
        "staging_outputs",
        sa.Column("id", JOB_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("identity", sa.String(80)),
        sa.Column("size", sa.BigInteger()),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    op.create_index("ix_staging_outputs_job_id", "staging_outputs", ["job_id"])
    op.create_table(
        "staging_leaders",
        sa.Column("task", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("lease_until", TIMESTAMP, nullable=False),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )


def downgrade() -> None:
    op.drop_table("staging_leaders")
    op.drop_index("ix_staging_outputs_job_id", "staging_outputs")
    op.drop_table("staging_outputs")
    with op.batch_alter_table("staging_jobs") as batch:
        batch.drop_index("ix_staging_jobs_expires_at")
        batch.drop_column("release_note")
        batch.drop_column("release_reason")
        batch.drop_column("released_at")
        batch.drop_column("expires_at")
        batch.drop_column("lifetime_seconds")
