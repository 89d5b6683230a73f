"""ingest_jobs.dispatched_at: when a job's messages were sent, so workers re-send lost ones

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.add_column(sa.Column("dispatched_at", sa.DateTime(), nullable=True))
    # Jobs from before this column had their messages sent, or were refused with the send.
    op.execute("UPDATE ingest_jobs SET dispatched_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.drop_column("dispatched_at")
