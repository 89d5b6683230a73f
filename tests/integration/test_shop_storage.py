"""Every declared column type stored and read back exactly, and unique columns held against
the table, through the loader's bulk paths on SQLite and PostgreSQL, with the test catalog's
shop tables (tests/support/catalogs/shop.toml)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from common.errors import ConcurrentUpdate
from common.model.catalog import load_order, table_spec
from common.retry import RetryPolicy
from common.sql.catalog_tables import data_table
from common.sql.db import Database
from common.sql.loader import load_rows
from common.stores.writes import Written, write_rows
from tests.support.shop_db import (
    ROWS,
    WORDS,
    catalog_database,
    exact,
    expected,
    shop_database,
    stored,
    uniques_catalog,
    valid_rows,
    words_catalog,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shop(kind: str, tmp_path: Path) -> Iterator[Database]:
    with shop_database(kind, tmp_path) as db:
        yield db


def _load_all(db: Database) -> None:
    for table in load_order():
        with db.write() as conn:
            loaded = load_rows(conn, table_spec(table), valid_rows(table))
        assert (loaded.inserted, loaded.rejected) == (len(expected(table)), []), table


def test_every_type_reads_back_as_it_was_inserted(shop: Database) -> None:
    # Given rows of every column type at the edges of its range, nulls and empty strings
    # When they go through the loader's bulk path (COPY on PostgreSQL, executemany on SQLite)
    _load_all(shop)

    # Then SQLAlchemy reads back the same values, of the same Python types, to the last bit
    with shop.read() as conn:
        for table in load_order():
            assert exact(stored(conn, table)) == exact(expected(table)), table


def test_a_null_and_an_empty_text_stay_apart(shop: Database) -> None:
    _load_all(shop)

    with shop.read() as conn:
        notes = conn.execute(text("SELECT id FROM orders WHERE note IS NULL")).scalars().all()
        empty = conn.execute(text("SELECT id FROM orders WHERE note = ''")).scalars().all()

    assert (notes, empty) == ([101], [100])


def _write(db: Database, table: str, columns: dict[str, list[object]], how: str) -> Written:
    with db.write() as conn:
        return write_rows(conn, table_spec(table), valid_rows(table, columns), how)


def _products(ids: list[int], skus: list[str]) -> dict[str, list[object]]:
    count = len(ids)
    return {
        "id": list(ids),
        "sku": list(skus),
        "price": [ROWS["products"]["price"][4]] * count,
        "weight_kg": [None] * count,
        "discontinued": [None] * count,
    }


def _skus(db: Database) -> dict[int, str]:
    t = data_table("products")
    with db.read() as conn:
        return {int(r.id): str(r.sku) for r in conn.execute(t.select())}


def test_a_unique_value_another_row_holds_is_refused(shop: Database) -> None:
    # Given products A-1 (id 1) and B-2 (id 2)
    _write(shop, "products", _products([1, 2], ["A-1", "B-2"]), "reject")

    # When new rows bring B-2 again, and a new value
    written = _write(shop, "products", _products([3, 4], ["B-2", "C-3"]), "reject")

    # Then the row holding B-2 is refused as a duplicate value, naming it, and the other goes in
    assert written.inserted == 1
    [refused] = written.rejected
    assert refused.line == 1
    assert [(e.column, e.rule, e.detail) for e in refused.errors] == [
        ("sku", "duplicate_value", "")
    ]
    assert refused.errors[0].message == "sku 'B-2' already exists in products"
    assert _skus(shop) == {1: "A-1", 2: "B-2", 4: "C-3"}


def test_a_row_replacing_its_own_id_keeps_or_changes_its_unique_value(shop: Database) -> None:
    _write(shop, "products", _products([1, 2], ["A-1", "B-2"]), "reject")

    # Row 1 keeps its own A-1, row 2 takes a free value, row 5 wants the A-1 row 1 still holds
    written = _write(shop, "products", _products([1, 2, 5], ["A-1", "Z-9", "A-1"]), "update")

    assert (written.inserted, written.updated) == (0, 2)
    assert [(r.line, [e.rule for e in r.errors]) for r in written.rejected] == [
        (3, ["duplicate_value"])
    ]
    assert _skus(shop) == {1: "A-1", 2: "Z-9"}


def test_a_row_refused_for_its_unique_value_does_not_replace_its_id(shop: Database) -> None:
    _write(shop, "products", _products([1, 2], ["A-1", "B-2"]), "reject")

    written = _write(shop, "products", _products([1], ["B-2"]), "update")

    assert (written.inserted, written.updated, len(written.rejected)) == (0, 0, 1)
    assert _skus(shop) == {1: "A-1", 2: "B-2"}


def _waiting_on_a_lock(db: Database) -> bool:
    with db.read() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar()
        )


def test_two_writers_inserting_one_unique_value_lose_no_row(tmp_path: Path) -> None:
    with shop_database("postgresql", tmp_path) as db:
        retry = RetryPolicy(attempts=3, initial_wait_seconds=0, max_wait_seconds=0)
        outcome: list[Written | BaseException] = []
        failures: list[BaseException] = []

        def second() -> None:
            def attempt() -> Written:
                try:
                    return _write(db, "products", _products([2], ["A-1"]), "reject")
                except ConcurrentUpdate as exc:
                    failures.append(exc)
                    raise

            try:
                outcome.append(retry.call(attempt))
            except BaseException as exc:
                outcome.append(exc)

        # Given a writer that inserted A-1 and has not committed yet
        with db.write() as first:
            load_rows(
                first, table_spec("products"), valid_rows("products", _products([1], ["A-1"]))
            )
            # When a second writer checks (A-1 is not there for it) and inserts A-1 too,
            # waiting on the first one's index entry
            thread = threading.Thread(target=second)
            thread.start()
            while thread.is_alive() and not _waiting_on_a_lock(db):
                thread.join(0.05)
        thread.join()

        # Then its insert fails on the unique index, and its retry refuses the row
        assert len(failures) == 1
        [written] = outcome
        assert isinstance(written, Written), written
        assert written.inserted == 0
        assert [e.rule for e in written.rejected[0].errors] == ["duplicate_value"]
        assert _skus(db) == {1: "A-1"}


def test_keyword_columns_and_rows_without_a_unique_value_or_a_reference_load(
    kind: str, tmp_path: Path
) -> None:
    with catalog_database(words_catalog(), kind, tmp_path) as db:
        _write(db, "authors", {"id": [1]}, "reject")
        first = _write(db, "words", WORDS, "reject")
        again = _write(
            db,
            "words",
            {
                "id": [5, 6, 7],
                "order": [5, 6, 7],
                "user": [None, "ann", "cy"],
                "author": [None, 2, 1],
            },
            "reject",
        )

        # Rows without a value in the optional unique and reference columns are all taken
        assert (first.inserted, first.rejected) == (4, [])
        assert again.inserted == 2
        assert [(r.line, [e.rule for e in r.errors]) for r in again.rejected] == [
            (2, ["duplicate_value", "unknown_reference"])
        ]
        with db.read() as conn:
            assert stored(conn, "words") == [
                *zip(*WORDS.values(), strict=True),
                (5, 5, None, None),
                (7, 7, "cy", 1),
            ]


def test_a_unique_value_of_every_type_is_found_in_the_table(kind: str, tmp_path: Path) -> None:
    held: dict[str, list[object]] = {
        "id": [1, 2],
        "n": [-(2**63), 2**63 - 1],
        "d": [Decimal("9" * 28 + ".0000000001"), Decimal("-0.0000000001")],
        "f": [0.1, 5e-324],
        "b": [True, None],
        "t": ["Ōsaka", ""],
        "day": [date(1, 1, 1), date(9999, 12, 31)],
        "at": [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999_999)],
    }
    unique = [name for name in held if name != "id"]
    # Row i has the value row 2 (row 1 for b) holds in the i-th unique column, and values of
    # its own elsewhere
    fresh: dict[str, list[object]] = {
        "id": [10 + i for i in range(len(unique))],
        "n": list(range(len(unique))),
        "d": [Decimal(i) for i in range(len(unique))],
        "f": [float(i) for i in range(len(unique))],
        "b": [None] * len(unique),
        "t": [str(i) for i in range(len(unique))],
        "day": [date(2000, 1, 1 + i) for i in range(len(unique))],
        "at": [datetime(2000, 1, 1, i) for i in range(len(unique))],
    }
    for i, name in enumerate(unique):
        fresh[name][i] = held[name][0 if name == "b" else 1]
    with catalog_database(uniques_catalog(), kind, tmp_path) as db:
        first = _write(db, "uniques", held, "reject")
        again = _write(db, "uniques", fresh, "reject")

    assert (first.inserted, again.inserted) == (2, 0)
    assert [[(e.column, e.rule) for e in r.errors] for r in again.rejected] == [
        [(name, "duplicate_value")] for name in unique
    ]


def test_a_decimal_written_through_sqlalchemy_is_kept_as_the_bulk_path_keeps_it(
    shop: Database,
) -> None:
    products = data_table("products")
    with shop.write() as conn:
        conn.execute(products.insert(), {"id": 1, "sku": "A-1", "price": Decimal("5")})
    _write(shop, "products", _products([2], ["B-2"]), "reject")

    with shop.read() as conn:
        prices = conn.execute(products.select().order_by(products.c.id)).all()
        text_of = conn.execute(text("SELECT CAST(price AS VARCHAR(50)) FROM products ORDER BY id"))
        spelled = [str(v) for v in text_of.scalars()]

    assert [str(p.price) for p in prices] == ["5.00", "12.30"]
    assert spelled == ["5.00", "12.30"]
