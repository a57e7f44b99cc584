"""staging_jobs.owner_uid / owner_gid: who the staged files and folders belong to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.add_column(sa.Column("owner_uid", sa.Integer()))
        batch.add_column(sa.Column("owner_gid", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.drop_column("owner_gid")
        batch.drop_column("owner_uid")
