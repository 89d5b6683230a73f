"""The test catalog's shop tables on SQL Server: their DDL and the statements that insert into
and look up in them are T-SQL (the grammar and deny-list of ``tests.support.tsql``), and rows of
every type go in through SQL Server's own path (``fast_executemany``, ``OPENJSON``) exactly
(run through pyodbc on PostgreSQL's ODBC driver, see ``tests/support/mssql_odbc.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.schema import CreateIndex, CreateTable

from common.model.catalog import current, load_order, table_spec
from common.sql.bulk import existing_ids_query, holders_query, quoted
from common.sql.catalog_tables import catalog_tables
from common.sql.db import Database
from common.sql.loader import load_rows
from common.sql.odbc_bulk import insert_statement
from tests.support.mssql_odbc import Sent, mssql_on_postgres
from tests.support.shop_db import (
    ROWS,
    WORDS,
    current_catalog,
    exact,
    expected,
    shop_catalog,
    stored,
    uniques_catalog,
    valid_rows,
    words_catalog,
)
from tests.support.tsql import MSSQL, as_tsql, problems


def _ddl() -> list[str]:
    tables = catalog_tables(current()).metadata.sorted_tables
    indexes = [index for table in tables for index in table.indexes]
    return [str(CreateTable(t).compile(dialect=MSSQL)).strip() for t in tables] + [
        str(CreateIndex(i).compile(dialect=MSSQL)).strip() for i in indexes
    ]


def _statements() -> list[str]:
    out: list[str] = []
    for table in load_order():
        spec = table_spec(table)
        out.append(as_tsql(existing_ids_query(table, "mssql")))
        out.append(insert_statement(*quoted(MSSQL, table, spec.column_names)))
        out += [
            as_tsql(holders_query(table, c.name, "mssql"))
            for c in spec.columns
            if c.unique and c is not spec.key
        ]
    return out


def test_the_shop_tables_are_t_sql_with_sql_servers_types() -> None:
    with shop_catalog():
        ddl = _ddl()

    assert problems(ddl) == {}
    lines = next(s for s in ddl if s.startswith("CREATE TABLE order_lines"))
    for column in (
        "unit_price NUMERIC(12, 4) NOT NULL",
        "shipped_on DATE NULL",
        "delivered_at DATETIME2(6) NULL",
        "quantity BIGINT NOT NULL",
    ):
        assert column in lines, lines
    products = next(s for s in ddl if s.startswith("CREATE TABLE products"))
    for column in (
        "discontinued BIT NULL",
        "sku NVARCHAR(20) NOT NULL",
        "weight_kg FLOAT(53) NULL",
    ):
        assert column in products, products
    assert any(s.startswith("CREATE UNIQUE INDEX ux_products_sku") for s in ddl)


def test_the_inserts_and_lookups_of_the_shop_tables_are_t_sql() -> None:
    with shop_catalog():
        statements = _statements()

    assert any("OPENJSON" in s.upper() and "sku" in s for s in statements)
    assert problems(statements) == {}


def test_an_optional_unique_column_may_lack_a_value_in_many_rows_on_sql_server() -> None:
    # SQL Server's unique index holds one NULL at most, unless it leaves the NULLs out.
    with current_catalog(words_catalog()):
        ddl = _ddl()
        statements = _statements()

    index = next(s for s in ddl if "INDEX ux_" in s)
    assert index.endswith("WHERE [user] IS NOT NULL"), index
    assert problems([*ddl, *statements]) == {}


def test_the_lookups_of_unique_values_of_every_type_are_t_sql() -> None:
    with current_catalog(uniques_catalog()):
        statements = _statements()

    assert any("CAST(anon_1.value AS NUMERIC(38, 10))" in s for s in statements), statements
    assert any("CAST(anon_1.value AS DATETIME2(6))" in s for s in statements), statements
    assert problems(statements) == {}


@pytest.fixture
def sql_server_shop() -> Iterator[tuple[Database, Sent, str]]:
    with shop_catalog(), mssql_on_postgres() as found:
        yield found


def test_every_type_arrives_exactly_through_fast_executemany(
    sql_server_shop: tuple[Database, Sent, str],
) -> None:
    db, sent, url = sql_server_shop
    # Given rows of every type at their edges, nulls included
    with db.write() as conn:
        for table in load_order():
            loaded = load_rows(conn, table_spec(table), valid_rows(table))
            assert (loaded.inserted, loaded.rejected) == (len(expected(table)), []), table
    # When a unique value comes again
    with db.write() as conn:
        again = {**{name: v[:1] for name, v in ROWS["products"].items()}, "id": [99]}
        refused = load_rows(conn, table_spec("products"), valid_rows("products", again))

    # Then every row is there as it was sent, and the duplicate was found with one parameter
    postgres = Database.from_url(url)
    try:
        with postgres.read() as conn:
            for table in load_order():
                assert exact(stored(conn, table)) == exact(expected(table)), table
    finally:
        postgres.dispose()
    assert [e.rule for r in refused.rejected for e in r.errors] == ["duplicate_value"]
    assert max(r.rows for r in sent.requests) > 1
    assert problems([s for s in sent.statements() if "OPENJSON" in s.upper()]) == {}


def test_keyword_columns_and_optional_unique_values_load_through_sql_servers_path() -> None:
    with current_catalog(words_catalog()), mssql_on_postgres() as (db, _, url):
        with db.write() as conn:
            load_rows(conn, table_spec("authors"), valid_rows("authors", {"id": [1]}))
            first = load_rows(conn, table_spec("words"), valid_rows("words", WORDS))
        with db.write() as conn:
            again = {"id": [5, 6], "order": [5, 6], "user": [None, "ann"], "author": [None, 1]}
            second = load_rows(conn, table_spec("words"), valid_rows("words", again))
        postgres = Database.from_url(url)
        try:
            with postgres.read() as conn:
                rows = stored(conn, "words")
        finally:
            postgres.dispose()

    assert (first.inserted, second.inserted) == (4, 1)
    assert [e.rule for r in second.rejected for e in r.errors] == ["duplicate_value"]
    assert rows == [*zip(*WORDS.values(), strict=True), (5, 5, None, None)]
