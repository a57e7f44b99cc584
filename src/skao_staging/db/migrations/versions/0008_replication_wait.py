"""staging_jobs.replication_rule and wait_until: jobs waiting for their DID to be replicated here.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")  # as in 0003


def upgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.add_column(sa.Column("replication_rule", sa.String(64)))
        batch.add_column(sa.Column("wait_until", TIMESTAMP))


def downgrade() -> None:
    with op.batch_alter_table("staging_jobs") as batch:
        batch.drop_column("wait_until")
        batch.drop_column("replication_rule")
