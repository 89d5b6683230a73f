"""The SQL Server bulk path: pyodbc ``fast_executemany``.

``fast_executemany`` sends parameter arrays in one round trip per batch instead of one per
row. A known trap with it is a batch that reports success while not every row arrived, so the
caller counts the rows afterwards (see :func:`common.sql.bulk.bulk_insert`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    """Arrow columns as row tuples (timestamps become naive ``datetime`` objects)."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


# SQL_TYPE_TIMESTAMP with 26 characters and 6 fractional digits: without it the driver may
# describe the parameter with whole seconds and microseconds are dropped without a word.
_TIMESTAMP_INPUT = (93, 26, 6)


def fast_insert(
    cursor: Any,
    table_name: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    timestamp_columns: Sequence[int] = (),
) -> None:
    """Insert ``rows`` with parameter arrays."""
    if not rows:
        return
    cursor.fast_executemany = True
    if timestamp_columns:
        cursor.setinputsizes(
            [_TIMESTAMP_INPUT if i in timestamp_columns else None for i in range(len(columns))]
        )
    placeholders = ", ".join("?" for _ in columns)
    cursor.executemany(
        f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({placeholders})", rows
    )
