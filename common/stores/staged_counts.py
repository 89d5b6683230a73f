"""The hire counts of a staged load's rows, kept while staging, so that publishing adds up a
few rows a key instead of grouping every row staged.

A part's worker groups each block's valid rows by key in memory (with Arrow, as a plain load
does) and writes what its part staged, one row a key, in the transaction of the part's last
block, beside that block's rows. A part resumed from a checkpoint first recounts, from
staging, the rows it staged before. Staged counts and rows are dropped together
(:func:`common.stores.staging.discard`), and a server's restart empties both (``UNLOGGED`` on
PostgreSQL); the publish checks that the counts add up to the rows staged before it trusts
them (:func:`complete`).
"""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import ColumnElement, Connection, Select, and_, delete, func, insert, select

from common.errors import PermanentError
from common.model.catalog import TableSpec
from common.model.jobs import Part
from common.sql.bulk import bulk_insert
from common.sql.catalog_tables import staging_table
from common.sql.schema import hire_count_changes, job_parts, stage_hire_counts
from common.stores.hire_counts import KEY, SOURCE, keyed_counts, recount, summarised

# Counts kept in memory are summed by key again once they hold this many rows.
_REGROUP_ROWS = 200_000


def _summed(counts: list[pa.Table]) -> pa.Table:
    table = pa.concat_tables(counts)
    summed = table.group_by(list(KEY), use_threads=False).aggregate([("hires", "sum")])
    return summed.rename_columns([*KEY, "hires"]).select([*KEY, "hires"])


class PartTally:
    """The hire counts of the rows one part of a staged load has staged: :meth:`stage` in each
    block's transaction, :meth:`committed` once that transaction has committed."""

    def __init__(self, spec: TableSpec, part: Part, job_seq: int) -> None:
        self.counted = summarised(spec.name)
        self.part, self.job_seq = part, job_seq
        # What the part staged before this delivery: nothing, or (resumed from a checkpoint)
        # not known until recounted.
        self._kept: list[pa.Table] | None = None if part.next_offset > part.start_offset else []
        self._pending: list[pa.Table] = []

    def stage(self, conn: Connection, rows: pa.Table, *, last: bool) -> None:
        """Count the block's staged ``rows``; with ``last``, write the part's counts."""
        if not self.counted:
            return
        kept = self._kept if self._kept is not None else self._recount(conn)
        self._pending = [*kept, keyed_counts(rows, 1)] if rows.num_rows else kept
        if sum(t.num_rows for t in self._pending) > _REGROUP_ROWS:
            self._pending = [_summed(self._pending)]
        if last and self._pending:
            counts = _summed(self._pending)
            seq = pa.array([self.job_seq] * counts.num_rows, pa.int64())
            _write(conn, counts.add_column(0, "job_seq", seq))

    def committed(self) -> None:
        """The last :meth:`stage` call's transaction committed."""
        self._kept = self._pending

    def _recount(self, conn: Connection) -> list[pa.Table]:
        st = staging_table(SOURCE)
        first_line = select(job_parts.c.first_line).where(
            job_parts.c.job_id == self.part.job_id, job_parts.c.part_no == self.part.part_no
        )
        mine = and_(
            st.c.job_seq == self.job_seq,
            st.c.line >= first_line.scalar_subquery(),
            st.c.line < self.part.next_line,
        )
        found = conn.execute(recount(st, mine)).all()
        if not found:
            return []
        columns = list(zip(*found, strict=True))
        names = [*KEY, "hires"]
        return [pa.table({n: pa.array(c, pa.int64()) for n, c in zip(names, columns, strict=True)})]


def _write(conn: Connection, counts: pa.Table) -> None:
    if conn.dialect.name == "mssql":
        # fast_executemany's own count cannot be checked for rows without a key.
        conn.execute(insert(stage_hire_counts), counts.to_pylist())
        return
    stored = bulk_insert(conn, stage_hire_counts.name, counts)
    if stored != counts.num_rows:
        raise PermanentError(f"the database staged {stored} of {counts.num_rows} hire counts")


def complete(conn: Connection, spec: TableSpec, job_seq: int, rows_staged: int) -> bool:
    """Whether the job's staged counts are those of ``rows_staged`` rows (always, for a table
    whose hires are not counted)."""
    if not summarised(spec.name):
        return True
    total = select(func.sum(stage_hire_counts.c.hires)).where(
        stage_hire_counts.c.job_seq == job_seq
    )
    return int(conn.execute(total).scalar() or 0) == rows_staged


def publish(
    conn: Connection, spec: TableSpec, job_seq: int, rejected: ColumnElement[bool] | None
) -> None:
    """Add the job's staged counts to the summary, less those of its staged rows where
    ``rejected`` (the rows the checks at publish rejected; ``None``: none were)."""
    if not summarised(spec.name):
        return
    key = [stage_hire_counts.c[name] for name in KEY]
    summed = (
        select(*key, func.sum(stage_hire_counts.c.hires))
        .where(stage_hire_counts.c.job_seq == job_seq)
        .group_by(*key)
    )
    conn.execute(insert(hire_count_changes).from_select([*KEY, "hires"], summed))
    if rejected is not None:
        st = staging_table(SOURCE)
        uncounted = recount(st, and_(st.c.job_seq == job_seq, rejected), -1)
        conn.execute(insert(hire_count_changes).from_select([*KEY, "hires"], uncounted))


def discard(conn: Connection, job_seq: int) -> None:
    """Drop the job's staged counts."""
    conn.execute(delete(stage_hire_counts).where(stage_hire_counts.c.job_seq == job_seq))


def sweep(conn: Connection, active: Select[tuple[int]]) -> None:
    """Drop the staged counts of every job but the ``active`` ones (sequence numbers)."""
    conn.execute(delete(stage_hire_counts).where(stage_hire_counts.c.job_seq.not_in(active)))
