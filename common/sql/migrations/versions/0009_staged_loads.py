"""Staged loads: load options, upload groups and retries on jobs; a staging table per data table

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

# Named explicitly for SQL Server, so the DDL rendered offline is the DDL a live upgrade runs.
LONG_TEXT = sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime().with_variant(mssql.DATETIME2(precision=6), "mssql")  # type: ignore[no-untyped-call]
# The data tables as they stand at this revision, column by column.
_TABLES: dict[str, list[tuple[str, sa.types.TypeEngine[Any]]]] = {
    "departments": [("id", ID), ("department", sa.Unicode(255))],
    "jobs": [("id", ID), ("job", sa.Unicode(255))],
    "hired_employees": [
        ("id", ID),
        ("name", sa.Unicode(255)),
        ("datetime", TIMESTAMP),
        ("department_id", ID),
        ("job_id", ID),
    ],
}


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.add_column(sa.Column("options", sa.String(length=400), nullable=True))
        batch.add_column(sa.Column("group_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("retry_of", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("publish_inserted", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("publish_updated", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("publish_rejected", sa.BigInteger(), nullable=True))
    # A job's upload group and its retries are looked up by these.
    op.create_index("ix_ingest_jobs_group_id", "ingest_jobs", ["group_id"])
    op.create_index("ix_ingest_jobs_retry_of", "ingest_jobs", ["retry_of"])
    for table, columns in _TABLES.items():
        op.create_table(
            f"stage_{table}",
            sa.Column("job_seq", sa.Integer(), nullable=False),
            sa.Column("line", sa.BigInteger(), nullable=False),
            sa.Column("raw", LONG_TEXT, nullable=False),
            *(sa.Column(name, kind, nullable=False) for name, kind in columns),
            sa.PrimaryKeyConstraint("job_seq", "line"),
        )
        op.create_index(f"ix_stage_{table}_job_id", f"stage_{table}", ["job_seq", "id"])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_stage_{table}_job_id", table_name=f"stage_{table}")
        op.drop_table(f"stage_{table}")
    op.drop_index("ix_ingest_jobs_retry_of", table_name="ingest_jobs")
    op.drop_index("ix_ingest_jobs_group_id", table_name="ingest_jobs")
    with op.batch_alter_table("ingest_jobs") as batch:
        for column in (
            "publish_rejected",
            "publish_updated",
            "publish_inserted",
            "retry_of",
            "group_id",
            "options",
        ):
            batch.drop_column(column)
