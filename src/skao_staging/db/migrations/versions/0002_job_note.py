"""staging_jobs.note: what a user should know about a job that succeeded (e.g. not read-only).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("staging_jobs", sa.Column("note", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.drop_column("note")
