"""initial schema

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

# Long text and bytes name SQL Server's types: left to the dialect, they render NTEXT and IMAGE
# where the server version is unknown (offline) and NVARCHAR(MAX)/VARBINARY(MAX) online.
LONG_TEXT = sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")
LONG_BYTES = sa.LargeBinary().with_variant(mssql.VARBINARY(), "mssql")  # type: ignore[no-untyped-call]

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("department", sa.Unicode(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "hired_employees",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("name", sa.Unicode(length=255), nullable=False),
        sa.Column(
            "datetime",
            sa.DateTime().with_variant(mssql.DATETIME2(precision=6), "mssql"),  # type: ignore[no-untyped-call]
            nullable=False,
        ),
        sa.Column(
            "department_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hired_employees", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hired_employees_datetime_dept_job",
            ["datetime", "department_id", "job_id"],
            unique=False,
        )

    op.create_table(
        "ingest_jobs",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("original_name", sa.Unicode(length=255), nullable=True),
        sa.Column("blob_name", sa.String(length=255), nullable=False),
        sa.Column("on_conflict", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", LONG_TEXT, nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("job_id"),
    )
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_ingest_jobs_status_table", ["status", "table_name"], unique=False)
        batch_op.create_index(
            "ix_ingest_jobs_table_sha", ["table_name", "content_sha256"], unique=False
        )

    op.create_table(
        "jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("job", sa.Unicode(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "queue_messages",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=128), nullable=False),
        sa.Column("body", LONG_BYTES, nullable=False),
        sa.Column("enqueued_at", sa.DateTime(), nullable=False),
        sa.Column("visible_at", sa.DateTime(), nullable=False),
        sa.Column("lock_token", sa.String(length=36), nullable=True),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("delivery_count", sa.Integer(), nullable=False),
        sa.Column("dead_lettered", sa.Boolean(), nullable=False),
        sa.Column("dead_letter_reason", LONG_TEXT, nullable=True),
        sa.Column("dead_letter_description", LONG_TEXT, nullable=True),
        sa.Column("dead_lettered_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_queue_messages_ready", ["queue", "dead_lettered", "visible_at"], unique=False
        )

    op.create_table(
        "rejected_rows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("raw", LONG_TEXT, nullable=False),
        sa.Column("errors", LONG_TEXT, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rejected_rows", schema=None) as batch_op:
        batch_op.create_index("ix_rejected_rows_batch", ["batch_id"], unique=False)
        batch_op.create_index("ix_rejected_rows_job_line", ["job_id", "line"], unique=False)

    op.create_table(
        "job_parts",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("part_no", sa.Integer(), nullable=False),
        sa.Column("start_offset", sa.BigInteger(), nullable=False),
        sa.Column("end_offset", sa.BigInteger(), nullable=False),
        sa.Column("first_line", sa.BigInteger(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("next_line", sa.BigInteger(), nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_inserted", sa.BigInteger(), nullable=False),
        sa.Column("rows_rejected", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lease_owner", sa.String(length=36), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["ingest_jobs.job_id"],
        ),
        sa.PrimaryKeyConstraint("job_id", "part_no"),
    )


def downgrade() -> None:
    op.drop_table("job_parts")
    with op.batch_alter_table("rejected_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_rejected_rows_job_line")
        batch_op.drop_index("ix_rejected_rows_batch")

    op.drop_table("rejected_rows")
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_queue_messages_ready")

    op.drop_table("queue_messages")
    op.drop_table("jobs")
    with op.batch_alter_table("ingest_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_jobs_table_sha")
        batch_op.drop_index("ix_ingest_jobs_status_table")

    op.drop_table("ingest_jobs")
    with op.batch_alter_table("hired_employees", schema=None) as batch_op:
        batch_op.drop_index("ix_hired_employees_datetime_dept_job")

    op.drop_table("hired_employees")
    op.drop_table("departments")
