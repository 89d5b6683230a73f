"""Staging: where a staged load keeps its valid rows until it publishes them all at once.

Each data table has a staging table (``stage_<table>``) with the same columns plus the job's
sequence number, the row's line and its raw text (for the rejections found at publish). Parts
stage their blocks in parallel, each block in the same transaction as its checkpoint, as a
plain load writes the table itself; see :mod:`common.usecases.publish` for what happens next.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, delete, func, select, text, update

from common.model.catalog import TableSpec, table_spec
from common.model.jobs import UNFINISHED, PartStatus
from common.model.rows import ValidRows
from common.sql.bulk import bulk_insert
from common.sql.catalog_tables import staging_table, staging_tables
from common.sql.db import utcnow
from common.sql.schema import ingest_jobs, job_parts, job_rejections
from common.stores import staged_counts


def stage(conn: Connection, spec: TableSpec, job_seq: int, rows: ValidRows) -> int:
    """Add the block's valid ``rows`` to the job's staged rows; how many were staged."""
    table = rows.table
    if table.num_rows == 0:
        return 0
    staged = pa.table(
        {
            "job_seq": pa.array([job_seq] * table.num_rows, pa.int64()),
            "line": table.column("line"),
            "raw": table.column("raw"),
            **{name: table.column(name) for name in spec.column_names},
        }
    )
    st = staging_table(spec.name)
    lines = table.column("line")
    low, high = pc.min(lines).as_py(), pc.max(lines).as_py()

    def count() -> int:
        return int(
            conn.execute(
                select(func.count())
                .select_from(st)
                .where(st.c.job_seq == job_seq, st.c.line.between(low, high))
            ).scalar_one()
        )

    return bulk_insert(conn, st.name, staged, count)


def analyze(conn: Connection, tables: Iterable[str]) -> None:
    """Bring PostgreSQL's statistics of the staging tables of ``tables`` up to date before
    publishing: freshly copied rows are unknown to the planner, which would then expect a
    thousand of them and probe a parent's key once per row rather than hash it once. Only
    the columns publishing joins on or filters by: the raw text's would cost the most."""
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        spec = table_spec(table)
        keys = [spec.columns[0].name, *(c.name for c in spec.columns if c.references)]
        conn.execute(
            text(f"ANALYZE {staging_table(table).name} (job_seq, line, {', '.join(keys)})")
        )


def discard(conn: Connection, job_seq: int) -> None:
    """Forget every row the job staged, in whichever table, and their hire counts."""
    for st in staging_tables():
        conn.execute(delete(st).where(st.c.job_seq == job_seq))
    staged_counts.discard(conn, job_seq)


def restage(conn: Connection, job_id: str, job_seq: int) -> None:
    """Start staging the job over: its staged rows and rejections go, and every part is
    pending again from its start, for the reconciliation to send (see
    :mod:`common.usecases.reconcile`)."""
    discard(conn, job_seq)
    conn.execute(delete(job_rejections).where(job_rejections.c.job_seq == job_seq))
    conn.execute(
        update(job_parts)
        .where(job_parts.c.job_id == job_id)
        .values(
            status=PartStatus.PENDING.value,
            next_offset=job_parts.c.start_offset,
            next_line=job_parts.c.first_line,
            rows_read=0,
            rows_inserted=0,
            rows_updated=0,
            rows_rejected=0,
            lease_owner=None,
            lease_until=None,
            updated_at=utcnow(),
        )
    )


def sweep_finished(conn: Connection) -> int:
    """Forget the staged rows of jobs that are over (or gone): what a publisher that stopped
    right after its transaction left behind. How many rows."""
    active = select(ingest_jobs.c.seq).where(ingest_jobs.c.status.in_(UNFINISHED))
    staged_counts.sweep(conn, active)
    return sum(
        int(conn.execute(delete(st).where(st.c.job_seq.not_in(active))).rowcount)
        for st in staging_tables()
    )
