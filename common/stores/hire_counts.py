"""Hires per quarter, department and job, kept exact by every write of hired_employees.

What the reports read instead of scanning ``hired_employees``. Each transaction that inserts
or deletes hires appends, in that same transaction, one change row per (year, quarter,
department, job) it touched with the signed number of hires: inserts only, so parallel writers
never wait for one another on a hot row nor deadlock. The counts are ``hire_counts`` (the base)
plus the sum of ``hire_count_changes``; :func:`fold` moves the changes into the base from time
to time, in one transaction. At every instant, in every snapshot, base plus changes equals a
recount of the table.

Writers call :func:`add_rows` (rows in hand), :func:`add_from` (an ``INSERT … SELECT`` source)
after inserting, and delete through :func:`delete_counted`; each does nothing more for other
tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Insert,
    Integer,
    Select,
    Subquery,
    delete,
    func,
    insert,
    literal_column,
    select,
    union_all,
)

from common.errors import PermanentError
from common.model.catalog import current
from common.sql.bulk import bulk_insert
from common.sql.catalog_tables import data_table
from common.sql.db import COUNTED
from common.sql.functions import Month, SumOfHires, Year
from common.sql.schema import hire_count_changes, hire_counts

SOURCE = "hired_employees"
KEY = ("hire_year", "hire_quarter", "department_id", "job_id")
Key = tuple[int, int, int, int]
_CHANGES = pa.schema([(name, pa.int64()) for name in (*KEY, "hires")])


def summarised(table: str) -> bool:
    """Whether writes to ``table`` change the summary: hired_employees, when the catalog
    declares the tables the reports read."""
    return table == SOURCE and current().has_reports


def _keyed(source: FromClause, where: ColumnElement[bool] | None) -> Subquery:
    """(year, quarter, department, job) of each row of ``source`` (hired_employees' columns)."""
    query = select(
        Year(source.c.datetime).label("hire_year"),
        (
            (Month(source.c.datetime) + literal_column("2", Integer))
            // literal_column("3", Integer)
        ).label("hire_quarter"),
        source.c.department_id,
        source.c.job_id,
    ).select_from(source)
    return (query if where is None else query.where(where)).subquery("keyed")


def recount(
    source: FromClause, where: ColumnElement[bool] | None = None, sign: int = 1
) -> Select[Any]:
    """``SELECT key…, sign * COUNT(*) FROM source WHERE … GROUP BY key``."""
    keyed = _keyed(source, where)
    key = [keyed.c[name] for name in KEY]
    hires = func.count() if sign == 1 else -func.count()
    return select(*key, hires.label("hires")).group_by(*key)


def counting(source: FromClause, where: ColumnElement[bool] | None, sign: int) -> Insert:
    """The ``INSERT … SELECT`` that appends the rows of ``source`` where ``where``,
    counted with ``sign`` (1 or -1)."""
    return insert(hire_count_changes).from_select([*KEY, "hires"], recount(source, where, sign))


def add_from(
    conn: Connection, table: str, source: FromClause, where: ColumnElement[bool] | None = None
) -> None:
    """Count the rows ``source`` (with hired_employees' columns) holds where ``where``: the
    rows an ``INSERT … SELECT`` just put into ``table``."""
    if summarised(table):
        conn.execute(counting(source, where, 1))


def delete_counted(
    conn: Connection,
    table: str,
    where: ColumnElement[bool] | None = None,
    params: Mapping[str, Any] | None = None,
) -> int:
    """Delete the rows of ``table`` where ``where`` (all without it) and uncount exactly the
    rows deleted; how many. ``params`` binds the parameters of ``where``.

    Counting what a separate query reads and then deleting would miss a row another writer
    changed in between (READ COMMITTED re-reads it for the delete), so the delete itself says
    what it removed: on PostgreSQL through a ``DELETE … RETURNING`` counted in the same
    statement, on SQL Server through its ``OUTPUT``. SQLite has one writer at a time, so what
    it reads first is what it deletes.
    """
    target = data_table(table)
    statement = delete(target) if where is None else delete(target).where(where)
    bound = dict(params or {})
    if not summarised(table):
        return int(conn.execute(statement, bound).rowcount)
    if conn.dialect.name == "sqlite":
        conn.execute(counting(data_table(SOURCE), where, -1), bound)
        return int(conn.execute(statement, bound).rowcount)
    hired = data_table(SOURCE)
    keys = (hired.c.datetime, hired.c.department_id, hired.c.job_id)
    if conn.dialect.name == "postgresql":
        gone = statement.returning(*keys).cte("gone")
        uncount = (
            insert(hire_count_changes)
            .from_select([*KEY, "hires"], recount(gone, None, -1))
            .returning(hire_count_changes.c.hires)
            .add_cte(gone)
        )
        return -sum(int(hires) for (hires,) in conn.execute(uncount, bound))
    removed = conn.execute(statement.returning(*keys), bound).all()
    if removed:
        deleted = pa.table(
            {
                "datetime": pa.array([r[0] for r in removed], pa.timestamp("us")),
                "department_id": pa.array([r[1] for r in removed], pa.int64()),
                "job_id": pa.array([r[2] for r in removed], pa.int64()),
            }
        )
        _append(conn, keyed_counts(deleted, -1))
    return len(removed)


def add_rows(conn: Connection, table: str, rows: pa.Table) -> None:
    """Count ``rows`` (Arrow, with hired_employees' columns), just inserted into ``table``."""
    if not summarised(table) or rows.num_rows == 0:
        return
    _append(conn, keyed_counts(rows, 1))


def keyed_counts(rows: pa.Table, sign: int) -> pa.Table:
    """(key…, hires) of ``rows`` (hired_employees' columns), each counted ``sign`` times."""
    at = rows.column("datetime")
    keyed = pa.table(
        {
            "hire_year": pc.cast(pc.year(at), pa.int64()),
            "hire_quarter": pc.cast(pc.quarter(at), pa.int64()),
            "department_id": pc.cast(rows.column("department_id"), pa.int64()),
            "job_id": pc.cast(rows.column("job_id"), pa.int64()),
        }
    )
    # One thread: twice as fast on a block, and no per-thread hash tables held in memory.
    counted = keyed.group_by(list(KEY), use_threads=False).aggregate([([], "count_all")])
    hires = pc.multiply(counted.column("count_all"), pa.scalar(sign, pa.int64()))
    return counted.drop_columns(["count_all"]).append_column("hires", hires).select([*KEY, "hires"])


def add_changes(conn: Connection, changes: Mapping[Key, int]) -> None:
    """Append ``changes`` (signed hires by key) as they are."""
    kept = {k: n for k, n in changes.items() if n}
    columns = {name: [k[i] for k in kept] for i, name in enumerate(KEY)}
    _append(conn, pa.table({**columns, "hires": list(kept.values())}, schema=_CHANGES))


def _append(conn: Connection, changes: pa.Table) -> None:
    if changes.num_rows == 0:
        return
    if conn.dialect.name == "mssql":
        # fast_executemany's own count cannot be checked for rows without a key.
        conn.execute(insert(hire_count_changes), changes.to_pylist())
        return
    stored = bulk_insert(conn, hire_count_changes.name, changes)
    if stored != changes.num_rows:
        # A count left out would make the summary wrong for good: roll the write back instead.
        raise PermanentError(
            f"the database stored {stored} of {changes.num_rows} hire counts; rolled back"
        )


def counted(where_year: int | None = None) -> Subquery:
    """Base and changes as one relation of (key…, hires) rows to be summed by key, for
    ``where_year`` only when given."""
    parts = []
    for table in (hire_counts, hire_count_changes):
        query = select(*(table.c[name] for name in KEY), table.c.hires)
        if where_year is not None:
            query = query.where(table.c.hire_year == where_year)
        parts.append(query)
    return union_all(*parts).subquery("counted")


def _by_key(rows: Any) -> dict[Key, int]:
    """``{key: hires}`` of (key…, hires) rows, keys whose hires sum to nothing left out."""
    found: dict[Key, int] = {}
    for year, quarter, department, job, hires in rows:
        if hires:
            found[(int(year), int(quarter), int(department), int(job))] = int(hires)
    return found


def totals(conn: Connection) -> dict[Key, int]:
    """Hires by key as the summary holds them (base plus changes)."""
    both = counted()
    key = [both.c[name] for name in KEY]
    return _by_key(conn.execute(select(*key, SumOfHires(both.c.hires)).group_by(*key)))


def recounted(conn: Connection, hired: FromClause | None = None) -> dict[Key, int]:
    """Hires by key, counted from hired_employees itself (``hired``: its table in a catalog
    other than the current one)."""
    return _by_key(conn.execute(recount(data_table(SOURCE) if hired is None else hired)))


def fold(conn: Connection) -> int:
    """Move every change this transaction sees into the base, set-based; how many base rows
    were written.

    The base rows of the years the changes touch join the changes, and the base of those
    years is written again from their sums: plain statements every database runs alike (no
    ``UPDATE … FROM`` or ``MERGE``, which they word differently). Run it in a snapshot
    (:meth:`Database.write` with ``snapshot=True``) so that the changes summed are the changes
    deleted, whatever writers commit meanwhile."""
    changes = hire_count_changes
    touched = hire_counts.c.hire_year.in_(select(changes.c.hire_year).distinct())
    base = select(*(hire_counts.c[n] for n in KEY), hire_counts.c.hires).where(touched)
    conn.execute(insert(changes).from_select([*KEY, "hires"], base))
    conn.execute(delete(hire_counts).where(touched))
    key = [changes.c[name] for name in KEY]
    # Written in key order, so that a year's rows sit on few pages: a report reads one year.
    summed = (
        select(*key, SumOfHires(changes.c.hires))
        .group_by(*key)
        .having(SumOfHires(changes.c.hires) != literal_column("0", Integer))
        .order_by(*key)
    )
    written = conn.execute(
        insert(hire_counts).from_select([*KEY, "hires"], summed), execution_options=COUNTED
    ).rowcount
    conn.execute(delete(changes))
    return int(written)
