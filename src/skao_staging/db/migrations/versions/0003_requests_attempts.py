"""Requests (idempotency keys), per-attempt records, cancellation and retry timing on jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staging_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(255)),
        sa.Column("idempotency_key", sa.String(128)),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("username", "idempotency_key", name="uq_staging_requests_idempotency"),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    op.create_table(
        "staging_attempts",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(128)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_reason", sa.Text()),
        sa.Column("started_at", TIMESTAMP),
        sa.Column("finished_at", TIMESTAMP, nullable=False),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    op.create_index("ix_staging_attempts_job_id", "staging_attempts", ["job_id"])
    with op.batch_alter_table("staging_jobs") as batch:
        batch.add_column(sa.Column("item_index", sa.Integer()))
        batch.add_column(sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("next_attempt_at", TIMESTAMP))
    op.create_index("ix_staging_jobs_updated_at", "staging_jobs", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_staging_jobs_updated_at", "staging_jobs")
    with op.batch_alter_table("staging_jobs") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("cancel_requested")
        batch.drop_column("item_index")
    op.drop_table("staging_attempts")
    op.drop_table("staging_requests")
