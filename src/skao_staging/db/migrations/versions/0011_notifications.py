"""Notifications: users' e-mail addresses, the notices outbox, and what was notified already.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.add_column(sa.Column("expiry_notified_at", TIMESTAMP))
    with op.batch_alter_table("staging_requests") as batch:
        batch.add_column(sa.Column("ended_notified_at", TIMESTAMP))
    # requests made before notices existed are not told of all at once when they are switched on
    op.execute(sa.text("UPDATE staging_requests SET ended_notified_at = CURRENT_TIMESTAMP"))
    op.create_table(
        "staging_contacts",
        sa.Column("username", sa.String(255), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    op.create_table(
        "staging_notifications",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("username", sa.String(255)),
        sa.Column("email", sa.String(254)),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("email_done_at", TIMESTAMP),
        sa.Column("webhook_done_at", TIMESTAMP),
        sa.Column("done_at", TIMESTAMP),
        sa.Column("last_error", sa.Text()),
        mysql_charset="utf8mb4",
        mariadb_charset="utf8mb4",
    )
    op.create_index("ix_staging_notifications_pending", "staging_notifications", ["done_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_staging_notifications_pending", "staging_notifications")
    op.drop_table("staging_notifications")
    op.drop_table("staging_contacts")
    with op.batch_alter_table("staging_requests") as batch:
        batch.drop_column("ended_notified_at")
    with op.batch_alter_table("staging_jobs") as batch:
        batch.drop_column("expiry_notified_at")
