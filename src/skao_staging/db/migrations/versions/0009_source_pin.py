"""staging_jobs.source_pin: what the source looked up at acceptance (a DID's replica), reused when the job runs.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.add_column(sa.Column("source_pin", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.drop_column("source_pin")
