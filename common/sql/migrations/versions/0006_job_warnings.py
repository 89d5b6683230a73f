"""ingest_jobs.warnings: what a person should know about a job that did not fail

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Named explicitly for SQL Server, so the DDL rendered offline is the DDL a live upgrade runs.
LONG_TEXT = sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.add_column(sa.Column("warnings", LONG_TEXT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.drop_column("warnings")
