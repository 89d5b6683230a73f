"""Job lifecycle: one job per identical upload, rows updated, dead-letter claims, table gates

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NOT_NULL_KEY = sa.text("dedup_key IS NOT NULL")
_TABLES = ("departments", "jobs", "hired_employees")


def upgrade() -> None:
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.add_column(sa.Column("dedup_key", sa.String(length=128), nullable=True))
    # The newest reusable job of each content keeps the key; older twins were never reused.
    jobs = sa.table(
        "ingest_jobs",
        sa.column("seq", sa.Integer()),
        sa.column("table_name", sa.String()),
        sa.column("content_sha256", sa.String()),
        sa.column("on_conflict", sa.String()),
        sa.column("status", sa.String()),
        sa.column("dedup_key", sa.String()),
    )
    # Offline (rendering the DDL) there are no rows to read.
    if not context.is_offline_mode():
        bind = op.get_bind()
        newest: dict[str, int] = {}
        for seq, table, sha, on_conflict in bind.execute(
            sa.select(jobs.c.seq, jobs.c.table_name, jobs.c.content_sha256, jobs.c.on_conflict)
            .where(jobs.c.status.not_in(["failed", "cancelled"]))
            .order_by(jobs.c.seq)
        ):
            newest[f"{table}:{sha}:{on_conflict}"] = seq
        for key, seq in newest.items():
            bind.execute(sa.update(jobs).where(jobs.c.seq == seq).values(dedup_key=key))
    op.create_index(
        "ux_ingest_jobs_dedup_key",
        "ingest_jobs",
        ["dedup_key"],
        unique=True,
        sqlite_where=_NOT_NULL_KEY,
        postgresql_where=_NOT_NULL_KEY,
        mssql_where=_NOT_NULL_KEY,
    )
    with op.batch_alter_table("job_parts") as batch:
        batch.add_column(
            sa.Column("rows_updated", sa.BigInteger(), nullable=False, server_default="0")
        )
    # Dead-letter ids are the queue table's sequence numbers: SQLite must never hand one out
    # twice (plain rowids reuse the largest after a delete), or an old claim would shadow it.
    if op.get_context().dialect.name == "sqlite":
        with op.batch_alter_table(
            "queue_messages", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    op.create_table(
        "dead_letter_claims",
        sa.Column("dead_letter_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("dead_letter_id"),
    )
    gates = op.create_table(
        "table_gates",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("restore_owner", sa.String(length=36), nullable=True),
        sa.Column("restore_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("table_name"),
    )
    op.bulk_insert(gates, [{"table_name": name} for name in _TABLES])


def downgrade() -> None:
    op.drop_table("table_gates")
    op.drop_table("dead_letter_claims")
    with op.batch_alter_table("job_parts") as batch:
        batch.drop_column("rows_updated")
    op.drop_index("ux_ingest_jobs_dedup_key", table_name="ingest_jobs")
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.drop_column("dedup_key")
