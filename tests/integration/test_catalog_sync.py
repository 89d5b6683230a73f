"""On start the database follows the catalog where that only adds, and the start stops on
anything that would lose or reinterpret data, naming it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, select, text

from common.sql.catalog_sync import CatalogMismatch, differences
from common.sql.db import Database
from common.sql.migrate import upgrade
from common.sql.schema import table_gates as gates_t
from tests.support.catalogs import SHOP, catalog_in_use

BEFORE = """
[tables.people]
columns = [
  { name = "id", type = "id" },
  { name = "name", type = "text", max_length = 20 },
  { name = "born", type = "date" },
]
"""


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database.from_url(database_url)
    yield database
    with database.engine.begin() as conn:
        for name in ("people", "stage_people", "pets", "stage_pets"):
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
    database.dispose()


def columns_of(db: Database, table: str) -> dict[str, tuple[str, bool]]:
    with db.engine.connect() as conn:
        return {
            c["name"]: (str(c["type"]), bool(c["nullable"]))
            for c in inspect(conn).get_columns(table)
        }


def test_the_declared_tables_are_created_with_their_staging_tables_and_gates(db: Database) -> None:
    with catalog_in_use(SHOP) as shop:
        upgrade(db)

        with db.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            gated = set(conn.execute(select(gates_t.c.table_name)).scalars())
            assert differences(conn, shop) == []
        for table in shop.load_order:
            assert {table, f"stage_{table}"} <= names
        assert set(shop.load_order) <= gated
        assert columns_of(db, "products")["weight_kg"][1] is True
        assert columns_of(db, "products")["sku"][1] is False
    with db.engine.begin() as conn:
        for table in reversed(shop.load_order):
            conn.execute(text(f"DROP TABLE {table}"))
            conn.execute(text(f"DROP TABLE stage_{table}"))


def test_additive_changes_are_applied_and_keep_the_rows(db: Database) -> None:
    with catalog_in_use(BEFORE):
        upgrade(db)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO people (id, name, born) VALUES (1, 'Ann', '1990-01-02')"))
    after = (
        BEFORE.replace("max_length = 20", "max_length = 80").replace(
            '  { name = "born", type = "date" },',
            '  { name = "born", type = "date" },\n'
            '  { name = "nick", type = "text", required = false },\n'
            '  { name = "code", type = "integer", required = false, unique = true },',
        )
        + '[tables.pets]\ncolumns = [{ name = "id", type = "id" },'
        + (' { name = "owner", type = "id", references = "people" }]\n')
    )

    with catalog_in_use(after) as catalog:
        with db.engine.connect() as conn:
            planned = [d.sentence for d in differences(conn, catalog)]
        upgrade(db)
        with db.engine.connect() as conn:
            assert differences(conn, catalog) == []
            assert conn.execute(text("SELECT id, name, nick FROM people")).all() == [
                (1, "Ann", None)
            ]
            indexes = {i["name"] for i in inspect(conn).get_indexes("people")}

    lengthened = (
        []
        if db.dialect == "sqlite"
        else ["table people: text column name from 20 to 80 characters"]
    )
    assert planned == [
        *lengthened,
        "table people: add column nick",
        "table people: add column code",
        "table people: add unique index ux_people_code",
        "create table pets",
        "create table stage_pets",
    ]
    assert "ux_people_code" in indexes
    assert set(columns_of(db, "stage_people")) >= {"nick", "code"}
    if db.dialect != "sqlite":  # SQLite keeps no length; validation holds text to it
        assert columns_of(db, "people")["name"][0].endswith("(80)")


@pytest.mark.parametrize(
    ("change", "sentence"),
    [
        (
            ('  { name = "born", type = "date" },\n', ""),
            "table people: column born is not in the catalog (dropped?)",
        ),
        (
            ('{ name = "born", type = "date" }', '{ name = "born", type = "integer" }'),
            "table people: column born is date, the catalog says integer",
        ),
        (
            (
                '{ name = "born", type = "date" }',
                '{ name = "born", type = "date" },\n  { name = "height", type = "float" }',
            ),
            "table people: new column height is required, and rows already there have no value"
            " for it; declare it with required = false",
        ),
    ],
)
def test_a_change_that_would_lose_data_stops_the_start_and_changes_nothing(
    db: Database, change: tuple[str, str], sentence: str
) -> None:
    with catalog_in_use(BEFORE):
        upgrade(db)
    before = columns_of(db, "people")

    with catalog_in_use(BEFORE.replace(*change)), pytest.raises(CatalogMismatch) as stopped:
        upgrade(db)

    assert sentence in str(stopped.value)
    assert "Change the catalog back" in str(stopped.value)
    assert columns_of(db, "people") == before


def test_a_shorter_text_is_refused_where_the_database_keeps_lengths(db: Database) -> None:
    with catalog_in_use(BEFORE):
        upgrade(db)

    shorter = BEFORE.replace("max_length = 20", "max_length = 10")
    with catalog_in_use(shorter) as catalog, db.engine.connect() as conn:
        found = differences(conn, catalog)

    if db.dialect == "sqlite":  # nothing stored there changes with a declared length
        assert found == []
        return
    assert [d.additive for d in found] == [False]
    assert [d.sentence for d in found] == [
        "table people: text column name from 20 to 10 characters"
    ]
