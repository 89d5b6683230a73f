"""ingest_jobs.dispatched_at is sent_at: one word for a job's messages having been sent

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.alter_column(
            "dispatched_at", new_column_name="sent_at", existing_type=sa.DateTime(), nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.alter_column(
            "sent_at", new_column_name="dispatched_at", existing_type=sa.DateTime(), nullable=True
        )
