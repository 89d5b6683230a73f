"""The catalog's tables as SQLAlchemy Core tables: each declared table, and the staging table an
all-or-nothing load keeps its valid rows in until it publishes them.

They live in a :class:`MetaData` of their own per catalog, apart from the service's bookkeeping
(:mod:`common.sql.schema`), because the catalog is data read at start, not code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Double,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    TypeDecorator,
    Unicode,
    UnicodeText,
)
from sqlalchemy.dialects import mssql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement, FromClause
from sqlalchemy.types import TypeEngine

from common.model.catalog import Catalog, ColumnType, TableSpec, current
from common.sql.schema import Id, Timestamp

# SQLite keeps a NUMERIC value as a binary float past 15 digits: decimals are kept as their text
# there, which is exact, and compared and summed by the service rather than by SQLite.
_SQLITE_DECIMAL_CHARS = 42  # sign, 38 digits, point, spare
_WIDE = Context(prec=_SQLITE_DECIMAL_CHARS)  # the default context rounds past 28 digits


class ExactDecimal(TypeDecorator[Decimal]):
    """``NUMERIC(precision, scale)``; on SQLite the value's text with ``scale`` digits after
    the point (as Arrow writes it), read back as a :class:`Decimal` like the others give."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale)
        self.precision, self.scale = precision, scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(_SQLITE_DECIMAL_CHARS))
        return dialect.type_descriptor(Numeric(self.precision, self.scale))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        exact = _WIDE.quantize(Decimal(value), Decimal(1).scaleb(-self.scale))
        return f"{exact:f}"

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(value)


def sql_type(
    column_type: ColumnType, *, max_length: int, precision: int, scale: int
) -> TypeEngine[Any]:
    """The column type a declared type is stored as, on every dialect."""
    match column_type:
        case ColumnType.ID | ColumnType.INTEGER:
            return Id
        case ColumnType.DECIMAL:
            return ExactDecimal(precision, scale)
        case ColumnType.FLOAT:
            # FLOAT(53) is SQL Server's own name for a double; it would take DOUBLE PRECISION.
            return Double().with_variant(mssql.FLOAT(53), "mssql")
        case ColumnType.BOOLEAN:
            return Boolean()
        case ColumnType.TEXT:
            return Unicode(max_length)
        case ColumnType.DATE:
            # Named for SQL Server, whose dialect falls back to DATETIME when it cannot tell the
            # server's version (DDL rendered offline).
            return Date().with_variant(mssql.DATE(), "mssql")
        case ColumnType.TIMESTAMP:
            return Timestamp
    raise AssertionError(column_type)


def _data_table(spec: TableSpec, metadata: MetaData) -> Table:
    columns: list[Column[object]] = []
    for col in spec.columns:
        if col.name == spec.key.name:
            # INTEGER PRIMARY KEY is SQLite's rowid: 64-bit and the fastest key it has.
            columns.append(Column(col.name, Id, primary_key=True, autoincrement=False))
            continue
        # References are enforced by the loader, set-based, in the same transaction as the
        # insert; a FOREIGN KEY would repeat that check once per row and cost more than half
        # of the load time on PostgreSQL (measured in docs/performance.md).
        kind = sql_type(
            col.type, max_length=col.max_length, precision=col.precision, scale=col.scale
        )
        columns.append(Column(col.name, kind, nullable=not col.required))
    # SQL Server's unique indexes hold one NULL at most; the others' hold any number, which
    # is what an optional unique column means.
    table = Table(spec.name, metadata, *columns, info={"key": spec.key.name})
    for c in spec.columns:
        if c.unique and c is not spec.key:
            column = table.c[c.name]
            where = None if c.required else column.is_not(None)
            Index(f"ux_{spec.name}_{c.name}", column, unique=True, mssql_where=where)
    return table


def _staging_table(spec: TableSpec, data: Table, metadata: MetaData) -> Table:
    """Where a staged load keeps a table's valid rows until it publishes them all at once:
    the rows with their job, line and raw text (for rejections found at publish).

    Built for writing fast: no key, one index on (job, line), which on PostgreSQL is a BRIN
    index on a table created ``UNLOGGED`` (migration 0011 for the shipped tables,
    :mod:`common.sql.catalog_sync` for the others): no WAL, and a crash of the server empties
    it, which the publish notices by counting (see :mod:`common.usecases.publish`)."""
    columns: list[Column[object]] = [
        Column("job_seq", Integer, nullable=False),
        Column("line", BigInteger, nullable=False),
        Column("raw", UnicodeText, nullable=False),
    ]
    for col in spec.columns:
        columns.append(Column(col.name, data.c[col.name].type, nullable=not col.required))
    return Table(
        f"stage_{spec.name}",
        metadata,
        *columns,
        Index(f"ix_stage_{spec.name}_job_line", "job_seq", "line", postgresql_using="brin"),
        info={"key": spec.key.name, "unlogged": True},
    )


@dataclass(frozen=True)
class CatalogTables:
    metadata: MetaData
    data: dict[str, Table]
    staging: dict[str, Table]


@functools.cache
def catalog_tables(catalog: Catalog) -> CatalogTables:
    """The tables of ``catalog``, built once per catalog."""
    metadata = MetaData()
    data = {spec.name: _data_table(spec, metadata) for spec in catalog.specs}
    staging = {spec.name: _staging_table(spec, data[spec.name], metadata) for spec in catalog.specs}
    return CatalogTables(metadata, data, staging)


def data_table(name: str) -> Table:
    """The current catalog's table ``name``."""
    return catalog_tables(current()).data[name]


def key_column(table: FromClause) -> ColumnElement[Any]:
    """The primary key column of a data or staging table built from the catalog (or an alias
    of one)."""
    original: Any = getattr(table, "element", table)
    key: ColumnElement[Any] = table.c[original.info["key"]]
    return key


def staging_table(name: str) -> Table:
    """The staging table of the current catalog's table ``name``."""
    return catalog_tables(current()).staging[name]


def staging_tables() -> list[Table]:
    return list(catalog_tables(current()).staging.values())
