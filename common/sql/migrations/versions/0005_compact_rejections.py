"""Compact rejections: per job and per batch, keyed by line, rules stored as codes

The raw line is kept; the broken rules are kept as ``column:rule[:detail]`` codes and their
messages are rendered when read, so a rejection costs little more than its raw text.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mssql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Named explicitly for SQL Server, so the DDL rendered offline is the DDL a live upgrade runs.
LONG_TEXT = sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")
_FOUND = re.compile(r"found (\d+)")
_BYTES = re.compile(r"the line is (\d+) bytes")
_PAGE = 10_000


def _code(error: dict[str, str]) -> str:
    """One stored error of the old shape as ``column:rule[:detail]``."""
    rule, message = error["rule"], error.get("message", "")
    detail = ""
    number = _FOUND.search(message) if rule == "field_count" else _BYTES.search(message)
    if rule in ("field_count", "line_too_long") and number:
        detail = number.group(1)
    elif rule == "duplicate_id" and "earlier in the same input" in message:
        detail = "input"
    return f"{quote(error['column'], safe='_')}:{rule}" + (f":{detail}" if detail else "")


def _codes(row: Any) -> str:
    return ";".join(_code(e) for e in orjson.loads(row.errors))


def _pages(bind: Any, query: Any) -> Iterator[list[Any]]:
    last = 0
    while True:
        rows = bind.execute(query.where(sa.column("id") > last).limit(_PAGE)).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def upgrade() -> None:
    op.create_table(
        "job_rejections",
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("job_seq", sa.Integer(), nullable=False),
        sa.Column("raw", LONG_TEXT, nullable=False),
        sa.Column("rules", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("job_seq", "line"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "batches",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("rows_inserted", sa.Integer(), nullable=False),
        sa.Column("rows_updated", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("batch_id", name="uq_batches_batch_id"),
    )
    op.create_table(
        "batch_rejections",
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("batch_seq", sa.Integer(), nullable=False),
        sa.Column("raw", LONG_TEXT, nullable=False),
        sa.Column("rules", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("batch_seq", "idx"),
        sqlite_with_rowid=False,
    )
    if not context.is_offline_mode():
        _move_rejections()
    op.drop_table("rejected_rows")


def _move_rejections() -> None:
    bind = op.get_bind()
    old = sa.table(
        "rejected_rows",
        sa.column("id", sa.Integer()),
        sa.column("table_name", sa.String()),
        sa.column("job_id", sa.String()),
        sa.column("batch_id", sa.String()),
        sa.column("line", sa.BigInteger()),
        sa.column("raw", sa.UnicodeText()),
        sa.column("errors", sa.UnicodeText()),
        sa.column("created_at", sa.DateTime()),
    )
    jobs = sa.table("ingest_jobs", sa.column("seq", sa.Integer()), sa.column("job_id", sa.String()))
    batches = sa.table(
        "batches",
        sa.column("seq", sa.Integer()),
        sa.column("batch_id", sa.String()),
        sa.column("table_name", sa.String()),
        sa.column("rows_inserted", sa.Integer()),
        sa.column("rows_updated", sa.Integer()),
        sa.column("rows_rejected", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
    )
    job_rejections = sa.table(
        "job_rejections",
        sa.column("line", sa.BigInteger()),
        sa.column("job_seq", sa.Integer()),
        sa.column("raw", sa.UnicodeText()),
        sa.column("rules", sa.String()),
    )
    batch_rejections = sa.table(
        "batch_rejections",
        sa.column("idx", sa.Integer()),
        sa.column("batch_seq", sa.Integer()),
        sa.column("raw", sa.UnicodeText()),
        sa.column("rules", sa.String()),
    )
    seq_of_job = dict(bind.execute(sa.select(jobs.c.job_id, jobs.c.seq)).all())
    # Batches of before this revision are known only by their rejections.
    for batch_id, table, created, rejected in bind.execute(
        sa.select(
            old.c.batch_id,
            sa.func.min(old.c.table_name),
            sa.func.min(old.c.created_at),
            sa.func.count(),
        )
        .where(old.c.batch_id.is_not(None))
        .group_by(old.c.batch_id)
    ).all():
        bind.execute(
            batches.insert().values(
                batch_id=batch_id,
                table_name=table,
                rows_inserted=0,
                rows_updated=0,
                rows_rejected=rejected,
                created_at=created,
            )
        )
    seq_of_batch = dict(bind.execute(sa.select(batches.c.batch_id, batches.c.seq)).all())
    query = sa.select(old.c.id, old.c.job_id, old.c.batch_id, old.c.line, old.c.raw, old.c.errors)
    for rows in _pages(bind, query.order_by(old.c.id)):
        from_jobs = [
            {
                "line": r.line,
                "job_seq": seq_of_job[r.job_id],
                "raw": r.raw,
                "rules": _codes(r),
            }
            for r in rows
            if r.job_id in seq_of_job
        ]
        from_batches = [
            {
                "idx": r.line,
                "batch_seq": seq_of_batch[r.batch_id],
                "raw": r.raw,
                "rules": _codes(r),
            }
            for r in rows
            if r.batch_id in seq_of_batch
        ]
        if from_jobs:
            bind.execute(job_rejections.insert(), from_jobs)
        if from_batches:
            bind.execute(batch_rejections.insert(), from_batches)


def downgrade() -> None:
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
    # Rejections stored since are not converted back: their messages live in the code.
    op.drop_table("batch_rejections")
    op.drop_table("batches")
    op.drop_table("job_rejections")
