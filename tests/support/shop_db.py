"""The test catalog's shop (tests/support/catalogs/shop.toml) made current in-process, on a
new database of each kind, and rows of every column type at the edges of their ranges as
validation types them (see :class:`common.model.rows.ValidRows`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection

from common.model.catalog import Catalog, table_spec
from common.model.catalog_file import load_catalog, parse_catalog
from common.model.rows import ValidRows, arrow_type
from common.sql.catalog_tables import data_table, key_column
from common.sql.db import Database
from common.sql.migrate import upgrade
from tests.support.catalogs import SHOP, catalog_in_use
from tests.support.services import postgres_database

current_catalog = catalog_in_use


def shop_catalog() -> AbstractContextManager[Catalog]:
    """The shop catalog, current until the block ends."""
    return current_catalog(load_catalog(SHOP))


@contextmanager
def catalog_database(catalog: Catalog, kind: str, tmp_path: Path) -> Iterator[Database]:
    """A new database of ``kind`` (sqlite or postgresql) with the tables of ``catalog``, which
    is current until the block ends."""
    with current_catalog(catalog), _url(kind, tmp_path) as url:
        db = Database.from_url(url)
        try:
            upgrade(db)
            yield db
        finally:
            db.dispose()


def shop_database(kind: str, tmp_path: Path) -> AbstractContextManager[Database]:
    """A new database of ``kind`` with the shop's tables, the shop catalog current."""
    return catalog_database(load_catalog(SHOP), kind, tmp_path)


@contextmanager
def _url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'shop.db'}"
        return
    with postgres_database() as url:
        yield url


# Column names SQL reserves, an optional unique column and an optional reference.
_WORDS = """
[tables.authors]
columns = [{ name = "id", type = "id" }]

[tables.words]
columns = [
  { name = "id", type = "id" },
  { name = "order", type = "integer" },
  { name = "user", type = "text", required = false, unique = true },
  { name = "author", type = "id", required = false, references = "authors" },
]
"""
WORDS: dict[str, list[Any]] = {
    "id": [1, 2, 3, 4],
    "order": [1, 2, 3, 4],
    "user": [None, "ann", None, "bob"],
    "author": [None, 1, None, None],
}


def words_catalog() -> Catalog:
    return parse_catalog(_WORDS, source="words.toml")


# A unique column of every type.
_UNIQUES = """
[tables.uniques]
columns = [
  { name = "id", type = "id" },
  { name = "n", type = "integer", unique = true },
  { name = "d", type = "decimal", precision = 38, scale = 10, unique = true },
  { name = "f", type = "float", unique = true },
  { name = "b", type = "boolean", unique = true, required = false },
  { name = "t", type = "text", unique = true },
  { name = "day", type = "date", unique = true },
  { name = "at", type = "timestamp", unique = true },
]
"""


def uniques_catalog() -> Catalog:
    return parse_catalog(_UNIQUES, source="uniques.toml")


BIG = Decimal("99999999.99")  # every digit of price's decimal(10, 2)

# Column values by table, as Python values of the Arrow types validation gives.
ROWS: dict[str, dict[str, list[Any]]] = {
    "regions": {
        "region_id": [1, 2, 3],
        "name": ["North", 'Süd; «q» "x", y|z\tw', "Ōsaka 大阪"],
    },
    "stores": {
        "code": ["S-1", "s,2", 'S"3'],
        "store_id": [10, 20, 9_223_372_036_854_775_807],
        "region_id": [1, 2, 3],
        "opened": [date(1, 1, 1), date(9999, 12, 31), date(2024, 2, 29)],
        "active": [True, False, True],
    },
    "products": {
        "id": [1, 2, 3, 4, 5, 6],
        "sku": ["A-1", "B-2", "C-3", "D-4", "E-5", "F-6"],
        "price": [BIG, -BIG, Decimal("0.00"), Decimal("-0.01"), Decimal("12.30"), Decimal("1.00")],
        "weight_kg": [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, None, -2.5e-7],
        "discontinued": [True, False, None, None, True, False],
    },
    "orders": {
        "id": [100, 101, 102, 103],
        "store_id": [10, 20, 9_223_372_036_854_775_807, 10],
        "placed_at": [
            datetime(1, 1, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999_999),
            datetime(2021, 7, 27, 16, 2, 8, 123_456),
            datetime(1970, 1, 1),
        ],
        "note": ["", None, 'with "quotes", commas,\nand a newline', "\\N"],
    },
    "order_lines": {
        "id": [1, 2, 3, 4],
        "order_id": [100, 101, 102, 103],
        "product_id": [1, 2, 3, 6],
        "quantity": [-(2**63), 2**63 - 1, 0, 7],
        "unit_price": [
            Decimal("99999999.9999"),
            Decimal("-0.0001"),
            Decimal("0.0000"),
            Decimal("3.1400"),
        ],
        "shipped_on": [date(1, 1, 1), None, date(9999, 12, 31), date(2021, 1, 2)],
        "delivered_at": [
            None,
            datetime(2021, 7, 27, 16, 2, 8, 1),
            datetime(9999, 12, 31, 23, 59, 59, 999_999),
            datetime(1, 1, 1, 0, 0, 0, 1),
        ],
    },
}


def arrow_rows(table: str, columns: dict[str, list[Any]] | None = None) -> pa.Table:
    """``columns`` (else the table's :data:`ROWS`) with the Arrow types of validated rows."""
    spec = table_spec(table)
    values = columns if columns is not None else ROWS[table]
    out: dict[str, pa.Array] = {}
    for col in spec.columns:
        out[col.name] = pa.array(values[col.name], arrow_type(col))
    return pa.table(out)


def valid_rows(table: str, columns: dict[str, list[Any]] | None = None) -> ValidRows:
    """The rows as validation hands them to the loader, numbered from line 1."""
    typed = arrow_rows(table, columns)
    count = typed.num_rows
    lines = pa.array(range(1, count + 1), pa.int64())
    raws = pa.array([f"line {i}" for i in range(1, count + 1)])
    return ValidRows(typed.add_column(0, "raw", raws).add_column(0, "line", lines), [])


def stored(conn: Connection, table: str) -> list[tuple[Any, ...]]:
    """The table's rows as SQLAlchemy reads them, in key order, columns in the catalog's."""
    data = data_table(table)
    names = table_spec(table).column_names
    query = data.select().with_only_columns(*(data.c[n] for n in names))
    return [tuple(r) for r in conn.execute(query.order_by(key_column(data)))]


def expected(table: str) -> list[tuple[Any, ...]]:
    """:data:`ROWS` of ``table`` as rows, in key order."""
    spec = table_spec(table)
    rows = list(zip(*(ROWS[table][n] for n in spec.column_names), strict=True))
    key = spec.column_names.index(spec.key.name)
    return sorted(rows, key=lambda r: r[key])


def exact(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows with each value spelled exactly: a float's bits, a decimal's digits, a value's
    type (``1 == True == Decimal(1)`` in Python, not in a table)."""
    return [
        tuple(
            (type(v).__name__, v.hex() if isinstance(v, float) else str(v)) if v is not None else v
            for v in row
        )
        for row in rows
    ]
