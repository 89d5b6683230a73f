"""The SQL Server bulk path: pyodbc ``fast_executemany``.

``fast_executemany`` sends parameter arrays in one round trip per batch instead of one per
row. A known trap with it is a batch that reports success while not every row arrived, so the
caller counts the rows afterwards (see :func:`common.sql.bulk.bulk_insert`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    """Arrow columns as row tuples of the Python values pyodbc binds: ``int``, ``str``,
    ``float``, ``bool``, ``Decimal``, ``date``, naive ``datetime`` and ``None``."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def timestamp_columns(table: pa.Table) -> list[int]:
    return [i for i, f in enumerate(table.schema) if pa.types.is_timestamp(f.type)]


def decimal_columns(table: pa.Table) -> dict[int, tuple[int, int]]:
    """(precision, scale) of each decimal column, by position."""
    return {
        i: (f.type.precision, f.type.scale)
        for i, f in enumerate(table.schema)
        if pa.types.is_decimal(f.type)
    }


# SQL_TYPE_TIMESTAMP with 26 characters and 6 fractional digits: without it the driver may
# describe the parameter with whole seconds and microseconds are dropped without a word.
_TIMESTAMP_INPUT = (93, 26, 6)
# SQL_DECIMAL: where the driver does not describe the parameter, pyodbc takes the precision
# and scale of the first row's value and rounds or refuses the later rows' digits.
_SQL_DECIMAL = 3


def fast_insert(
    cursor: Any,
    table_name: str,
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    timestamp_columns: Sequence[int] = (),
    decimal_columns: Mapping[int, tuple[int, int]] | None = None,
) -> None:
    """Insert ``rows`` with parameter arrays."""
    if not rows:
        return
    cursor.fast_executemany = True
    decimals = decimal_columns or {}
    if timestamp_columns or decimals:
        sizes: list[tuple[int, int, int] | None] = []
        for i in range(len(columns)):
            if i in timestamp_columns:
                sizes.append(_TIMESTAMP_INPUT)
            elif i in decimals:
                sizes.append((_SQL_DECIMAL, *decimals[i]))
            else:
                sizes.append(None)
        cursor.setinputsizes(sizes)
    cursor.executemany(insert_statement(table_name, columns), rows)


def insert_statement(table_name: str, columns: Sequence[str]) -> str:
    placeholders = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({placeholders})"
