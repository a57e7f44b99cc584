"""staging_requests.dids: the Rucio DIDs a request asked for, one a line (datasets before expansion).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staging_requests") as batch:
        batch.add_column(sa.Column("dids", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("staging_requests") as batch:
        batch.drop_column("dids")
