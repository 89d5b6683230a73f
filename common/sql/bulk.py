"""The database's own bulk paths, and lookups of ids and unique values that take any number
of them at once.

``COPY`` on PostgreSQL, one ``executemany`` on SQLite, ``fast_executemany`` on SQL Server (whose
row count is checked afterwards), all in the caller's transaction, for every column type; ids
and values as one array or JSON parameter, since SQL Server takes at most 2,100 parameters per
request.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    column,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect

from common.sql.catalog_tables import data_table, key_column
from common.sql.odbc_bulk import (
    decimal_columns,
    fast_insert,
    insert_statement,
    rows_of,
    timestamp_columns,
)

# Up to this many possible ids per candidate, a range scan is cheaper than a list of ids.
_DENSE_RANGE = 4


def id_in(table: str, dialect: str) -> ColumnElement[bool]:
    """``id IN (:ids)`` for any number of ids as one parameter (SQL Server takes at most 2,100
    per request): an array on PostgreSQL, a JSON array on SQLite (``json_each``) and SQL Server
    (``OPENJSON``); see :func:`ids_parameter`."""
    ids = key_column(data_table(table))
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
    return select(key_column(data_table(table))).where(id_in(table, dialect))


def existing_among(conn: Connection, table: str, candidates: pa.Array) -> pa.Array:
    """Ids of ``table`` among ``candidates``, possibly with others between them: use it as a
    ``value_set`` for the candidates, never count it."""
    unique = pc.unique(candidates.drop_null())  # an optional reference may have no value
    if len(unique) == 0:
        return pa.array([], pa.int64())
    bounds = pc.min_max(unique)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if high - low < _DENSE_RANGE * len(unique):
        # Ids in a file mostly come in runs: one range scan on the key beats a huge parameter.
        ids = key_column(data_table(table))
        found = conn.execute(select(ids).where(ids.between(low, high))).scalars()
        return pa.array(list(found), pa.int64())
    param = ids_parameter(conn.dialect.name, unique.to_pylist())
    found = conn.execute(existing_ids_query(table, conn.dialect.name), {"ids": param}).scalars()
    return pa.array(list(found), pa.int64())


def _values_parameter(dialect: str, values: pa.Array) -> Any:
    if dialect == "postgresql":
        return values.to_pylist()
    listed = sqlite_values(values) if dialect == "sqlite" else values.to_pylist()
    return orjson.dumps(listed, default=str).decode()  # decimals as their exact text


def holders_query(table: str, column_name: str, dialect: str) -> Select[Any]:
    """``(position, key)`` of each value in ``:values`` (one parameter, like the ids of
    :func:`id_in`) that a row of ``table`` holds in ``column_name``, equal as the database
    compares them (its collation, on SQL Server): positions from 0, see :func:`holders_of`."""
    data = data_table(table)
    col = data.c[column_name]
    position: ColumnElement[Any]
    value: ColumnElement[Any]
    if dialect == "postgresql":
        array = func.unnest(bindparam("values", type_=ARRAY(col.type)))
        listed = array.table_valued("value", with_ordinality="n").render_derived()
        position, value = listed.c.n - 1, listed.c.value
    else:
        source = func.openjson if dialect == "mssql" else func.json_each
        listed = source(bindparam("values")).table_valued("key", "value")
        position, value = cast(listed.c.key, Integer), listed.c.value
        if dialect == "mssql" and not isinstance(col.type, String):
            value = cast(value, col.type)  # OPENJSON's values are text
    return select(position, key_column(data)).select_from(listed).join(data, col == value)


def holders_of(conn: Connection, table: str, column_name: str, values: pa.Array) -> pa.Array:
    """The key of the row of ``table`` that holds each of the distinct, non-null ``values`` in
    its unique ``column_name``; null where none does."""
    dialect = conn.dialect.name
    query = holders_query(table, column_name, dialect)
    found = conn.execute(query, {"values": _values_parameter(dialect, values)}).all()
    keys: list[int | None] = [None] * len(values)
    for position, key in found:
        keys[int(position)] = int(key)
    return pa.array(keys, pa.int64())


def _present(conn: Connection, table: str, ids: pa.Array) -> int:
    """How many of ``ids`` (distinct) are in ``table``."""
    unique = pc.unique(ids)
    return int(pc.sum(pc.is_in(unique, value_set=existing_among(conn, table, unique))).as_py() or 0)


def quoted(dialect: Dialect, table_name: str, columns: Sequence[str]) -> tuple[str, list[str]]:
    """The table's and the columns' names as ``dialect`` must write them: a catalog may name
    a column ``order`` or ``user``."""
    quote = dialect.identifier_preparer.quote
    return quote(table_name), [quote(name) for name in columns]


def _quoted(conn: Connection, table_name: str, table: pa.Table) -> tuple[str, list[str]]:
    return quoted(conn.dialect, table_name, table.column_names)


def _copy_postgresql(conn: Connection, table_name: str, table: pa.Table) -> int:
    # Arrow writes a null as an empty field and quotes every string, the empty one too: COPY's
    # csv format reads the first as NULL and the second as ''. Floats are written in their
    # shortest form that reads back to the same double.
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    driver = conn.connection.driver_connection
    assert driver is not None
    name, columns = _quoted(conn, table_name, table)
    with driver.cursor() as cur:
        with cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())
        return int(cur.rowcount)


def sqlite_values(values: pa.Array | pa.ChunkedArray) -> list[Any]:
    """An Arrow column as the values SQLite keeps, as SQLAlchemy's SQLite types read them:
    timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff``, dates as ``YYYY-MM-DD``, decimals as their
    exact text with every digit of the scale (see ``catalog_tables.ExactDecimal``), booleans as
    0 and 1."""
    kind = values.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_decimal(kind):
        values = pc.cast(values, pa.string())
    listed: list[Any] = values.to_pylist()
    return listed


def _executemany_sqlite(conn: Connection, table_name: str, table: pa.Table) -> int:
    columns = [sqlite_values(table.column(name)) for name in table.column_names]
    driver = conn.connection.driver_connection
    assert driver is not None
    cur = driver.executemany(
        insert_statement(*_quoted(conn, table_name, table)), zip(*columns, strict=True)
    )
    return int(cur.rowcount)


def _fast_executemany(
    conn: Connection, table_name: str, table: pa.Table, count: Callable[[], int] | None
) -> int:
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    name, columns = _quoted(conn, table_name, table)
    try:
        fast_insert(
            cursor,
            name,
            columns,
            rows_of(table),
            timestamp_columns(table),
            decimal_columns(table),
        )
    finally:
        cursor.close()
    # fast_executemany's row count is not to be trusted: count which of the rows' ids arrived
    # (the rows' ids only: other ids in the same range may have been there before).
    if count is not None:
        return count()
    key = key_column(data_table(table_name)).name
    return _present(conn, table_name, table.column(key).combine_chunks())


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
