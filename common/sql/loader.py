"""Write validated rows with the database's own bulk path, after set-based checks.

For a block of rows, one query per referenced table and one for the target fetch, among the
block's ids, those that exist; Arrow then splits the block into refused rows (duplicate id,
unknown reference) and rows to insert, which go in with ``COPY`` (PostgreSQL), one
``executemany`` (SQLite) or ``fast_executemany`` (SQL Server). A concurrent writer inserting the
same id between check and insert makes the insert fail on the primary key; the transaction
rolls back and is retried, and the retry sees the row. Everything runs in the caller's
transaction.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    bindparam,
    cast,
    column,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from common.errors import PermanentError
from common.model.catalog import TableSpec
from common.model.rows import FieldError, Rejection, ValidRows
from common.model.rules import broken
from common.sql.odbc_bulk import fast_insert, rows_of
from common.sql.schema import data_tables
from common.stores import hire_counts

# Up to this many possible ids per candidate, a range scan is cheaper than a list of ids.
_DENSE_RANGE = 4

ON_CONFLICT_REJECT = "reject"
ON_CONFLICT_UPDATE = "update"


@dataclass(frozen=True)
class Loaded:
    inserted: int
    updated: int
    rejected: list[Rejection]


def id_in(table: str, dialect: str) -> ColumnElement[bool]:
    """``id IN (:ids)`` for any number of ids as one parameter (SQL Server takes at most 2,100
    per request): an array on PostgreSQL, a JSON array on SQLite (``json_each``) and SQL Server
    (``OPENJSON``); see :func:`ids_parameter`."""
    ids = data_tables[table].c.id
    if dialect == "postgresql":
        return ids == func.any(bindparam("ids", type_=ARRAY(BigInteger)))
    if dialect == "mssql":
        values = select(cast(column("value"), BigInteger)).select_from(
            func.openjson(bindparam("ids"))
        )
    else:
        values = select(column("value")).select_from(func.json_each(bindparam("ids")))
    return ids.in_(values.scalar_subquery())


def ids_parameter(dialect: str, ids: list[int]) -> Any:
    """The value of ``:ids`` in :func:`id_in`."""
    return ids if dialect == "postgresql" else orjson.dumps(ids).decode()


def existing_ids_query(table: str, dialect: str) -> Select[Any]:
    """``SELECT id FROM table WHERE id IN (:ids)``, the ids as one parameter."""
    return select(data_tables[table].c.id).where(id_in(table, dialect))


def _existing(conn: Connection, table: str, candidates: pa.Array) -> pa.Array:
    """Ids of ``table`` among ``candidates``, possibly with others between them: use it as a
    ``value_set`` for the candidates, never count it."""
    unique = pc.unique(candidates)
    bounds = pc.min_max(unique)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if high - low < _DENSE_RANGE * len(unique):
        # Ids in a file mostly come in runs: one range scan on the key beats a huge parameter.
        ids = data_tables[table].c.id
        found = conn.execute(select(ids).where(ids.between(low, high))).scalars()
        return pa.array(list(found), pa.int64())
    param = ids_parameter(conn.dialect.name, unique.to_pylist())
    found = conn.execute(existing_ids_query(table, conn.dialect.name), {"ids": param}).scalars()
    return pa.array(list(found), pa.int64())


def _present(conn: Connection, table: str, ids: pa.Array) -> int:
    """How many of ``ids`` (distinct) are in ``table``."""
    unique = pc.unique(ids)
    return int(pc.sum(pc.is_in(unique, value_set=_existing(conn, table, unique))).as_py() or 0)


def _copy_postgresql(conn: Connection, table_name: str, table: pa.Table) -> int:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        with cur.copy(
            f"COPY {table_name} ({', '.join(table.column_names)}) FROM STDIN (FORMAT csv)"
        ) as copy:
            copy.write(buffer.getbuffer())
        return int(cur.rowcount)


def _executemany_sqlite(conn: Connection, table_name: str, table: pa.Table) -> int:
    columns = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            # "YYYY-MM-DD HH:MM:SS.ffffff": the text SQLAlchemy's SQLite DateTime stores.
            col = pc.cast(col, pa.string())
        columns.append(col.to_pylist())
    driver = conn.connection.driver_connection
    assert driver is not None
    placeholders = ", ".join("?" for _ in columns)
    cur = driver.executemany(
        f"INSERT INTO {table_name} ({', '.join(table.column_names)}) VALUES ({placeholders})",
        zip(*columns, strict=True),
    )
    return int(cur.rowcount)


def _fast_executemany(
    conn: Connection, table_name: str, table: pa.Table, count: Callable[[], int] | None
) -> int:
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        timestamps = [i for i, f in enumerate(table.schema) if pa.types.is_timestamp(f.type)]
        fast_insert(cursor, table_name, table.column_names, rows_of(table), timestamps)
    finally:
        cursor.close()
    # fast_executemany's row count is not to be trusted: count which of the rows' ids arrived
    # (the rows' ids only: other ids in the same range may have been there before).
    if count is not None:
        return count()
    return _present(conn, table_name, table.column("id").combine_chunks())


def bulk_insert(
    conn: Connection, table_name: str, table: pa.Table, count: Callable[[], int] | None = None
) -> int:
    """Insert every row of ``table`` with the dialect's bulk path; return the rows stored.

    Where the driver's own count cannot be trusted (SQL Server's ``fast_executemany``), the
    rows are counted afterwards by their ids in ``table_name``, or by ``count`` when given
    (for a table that is not a data table)."""
    if table.num_rows == 0:
        return 0
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return _copy_postgresql(conn, table_name, table)
    if dialect == "sqlite":
        return _executemany_sqlite(conn, table_name, table)
    return _fast_executemany(conn, table_name, table, count)


def load_rows(
    conn: Connection, spec: TableSpec, rows: ValidRows, on_conflict: str = ON_CONFLICT_REJECT
) -> Loaded:
    """Insert ``rows.table`` into ``spec``'s table; return counts and the rows refused.

    With ``on_conflict="update"`` a row whose id exists replaces it (delete and insert in the
    same transaction) instead of being refused.
    """
    table = rows.table
    if table.num_rows == 0:
        return Loaded(0, 0, [])
    id_col = spec.columns[0].name
    ids = table.column(id_col).combine_chunks()

    errors: dict[str, pa.Array] = {}
    for col in spec.columns:
        if col.references:
            values = table.column(col.name).combine_chunks()
            errors[col.name] = pc.invert(
                pc.is_in(values, value_set=_existing(conn, col.references, values))
            )
    refused_mask = pa.array([False] * table.num_rows)
    for mask in errors.values():
        refused_mask = pc.or_(refused_mask, mask)
    present = pc.is_in(ids, value_set=_existing(conn, spec.name, ids))
    updated = 0
    if on_conflict == ON_CONFLICT_UPDATE:
        replace = pc.and_not(present, refused_mask)
        if pc.any(replace).as_py():
            dialect = conn.dialect.name
            replaced = {"ids": ids_parameter(dialect, ids.filter(replace).to_pylist())}
            hire_counts.remove_where(conn, spec.name, id_in(spec.name, dialect), replaced)
            updated = conn.execute(
                delete(data_tables[spec.name]).where(id_in(spec.name, dialect)), replaced
            ).rowcount
    else:
        errors[id_col] = present
        refused_mask = pc.or_(refused_mask, present)

    to_insert = table.filter(pc.invert(refused_mask)).drop_columns(["line", "raw"])
    stored = bulk_insert(conn, spec.name, to_insert)
    if stored != to_insert.num_rows:
        # Every row handed to the bulk path must be there; anything else would lose rows.
        raise PermanentError(
            f"the database stored {stored} of {to_insert.num_rows} rows; the block was rolled back"
        )
    hire_counts.add_rows(conn, spec.name, to_insert)
    return Loaded(stored - updated, updated, _refusals(spec, table, errors, refused_mask))


def _refusals(
    spec: TableSpec, table: pa.Table, errors: dict[str, pa.Array], refused_mask: pa.Array
) -> list[Rejection]:
    if not pc.any(refused_mask).as_py():
        return []
    refused = table.filter(refused_mask)
    masks = {name: mask.filter(refused_mask).to_pylist() for name, mask in errors.items()}
    values = {name: refused.column(name).to_pylist() for name in errors}
    id_col = spec.columns[0].name
    out: list[Rejection] = []
    for i, (line, raw) in enumerate(
        zip(refused.column("line").to_pylist(), refused.column("raw").to_pylist(), strict=True)
    ):
        found: list[FieldError] = []
        for col in spec.columns:
            if col.name not in masks or not masks[col.name][i]:
                continue
            rule = "duplicate_id" if col.name == id_col else "unknown_reference"
            found.append(broken(spec, col.name, rule, value=values[col.name][i]))
        out.append(Rejection(line, raw, tuple(found)))
    return out
