"""A catalog file declares the tables; every mistake in it is named before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.model.catalog import ColumnType, Timezone
from common.model.catalog_file import CatalogError, load_catalog, parse_catalog, shipped_catalog
from common.settings import Settings
from tests.support.catalogs import SHOP


def problems_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source="c.toml")
    return caught.value.problems


def test_the_shipped_catalog_declares_the_challenges_three_tables() -> None:
    shipped = shipped_catalog()

    assert shipped.load_order == ("departments", "jobs", "hired_employees")
    assert shipped.has_reports
    hired = shipped.table("hired_employees")
    assert hired.column_names == ("id", "name", "datetime", "department_id", "job_id")
    assert hired.parents == ("departments", "jobs")
    assert hired.column("datetime").timezone is Timezone.REQUIRED


def test_tables_load_parents_first_whatever_order_they_are_declared_in() -> None:
    shop = load_catalog(SHOP)

    order = shop.load_order
    assert sorted(order) == ["order_lines", "orders", "products", "regions", "stores"]
    for spec in shop.specs:
        assert all(order.index(parent) < order.index(spec.name) for parent in spec.parents)
    assert shop.children_of("orders") == ("order_lines",)
    assert not shop.has_reports


def test_a_table_may_name_its_key_delimiter_leading_rows_and_column_settings() -> None:
    shop = load_catalog(SHOP)

    stores = shop.table("stores")
    assert stores.key.name == "store_id"
    products = shop.table("products")
    assert (products.delimiter, products.skip_leading_rows) == ("|", 1)
    assert products.column("sku").unique and products.column("sku").max_length == 20
    price = products.column("price")
    assert (price.type, price.precision, price.scale) == (ColumnType.DECIMAL, 10, 2)
    discontinued = products.column("discontinued")
    assert (discontinued.required, discontinued.null_marker) == (False, "NULL")
    assert shop.table("order_lines").delimiter == "\t"
    assert shop.table("orders").column("placed_at").timezone is Timezone.ASSUME_UTC


def test_every_mistake_is_named_at_once() -> None:
    found = problems_of(
        """
        [tables.a]
        columns = [
          { name = "id", type = "uuid" },
          { name = "b_id", type = "text", references = "b" },
          { name = "c_id", type = "id", references = "nowhere" },
          { name = "price", type = "decimal", precision = 4, scale = 6 },
          { name = "note", type = "text", null_marker = "-" },
          { name = "line", type = "text" },
          { name = "x", type = "integer", colour = "red" },
        ]
        [tables.b]
        delimiter = '"'
        skip_leading_rows = -1
        primary_key = "nope"
        columns = [{ name = "id", type = "id" }]
        """
    )

    assert found == [
        "table 'a', column 'id': unknown type 'uuid'; expected one of id, integer, decimal,"
        " float, boolean, text, date, timestamp",
        "table 'a', column 'b_id': a column that references a table must have type 'id'",
        "table 'a', column 'price': scale must be a whole number from 0 to 4",
        "table 'a', column 'note': null_marker is only for optional columns (required = false)",
        "table 'a', column 'line': the name is used by the service itself; choose another",
        "table 'a', column 'x': unknown key 'colour'",
        "table 'b': primary_key 'nope' is not one of its columns",
    ]


def test_a_reference_must_name_a_declared_table() -> None:
    found = problems_of(
        """
        [tables.a]
        columns = [{ name = "id", type = "id" }, { name = "c_id", type = "id", references = "c" }]
        """
    )

    assert found == ["table 'a', column 'c_id': references 'c', which is not declared"]


@pytest.mark.parametrize(
    ("tables", "cycle"),
    [
        ({"a": "b", "b": "a"}, "a → b"),
        ({"a": "a"}, "a"),
    ],
)
def test_references_that_form_a_cycle_are_refused(tables: dict[str, str], cycle: str) -> None:
    text = "".join(
        f'[tables.{name}]\ncolumns = [{{ name = "id", type = "id" }},'
        f' {{ name = "p", type = "id", references = "{parent}" }}]\n'
        for name, parent in tables.items()
    )

    assert problems_of(text) == [
        f"references form a cycle among {cycle}: no table can be loaded first"
    ]


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("[tables.t]\ncolumns = []", "table 't': 'columns' must be a non-empty list"),
        ("[tables.ingest_jobs]\ncolumns = [{ name = 'id', type = 'id' }]", "taken by the service"),
        ("[tables.T]\ncolumns = [{ name = 'id', type = 'id' }]", "lower-case letters"),
        (
            "[tables.t]\ncolumns = [{ name = 'k', type = 'text' }]",
            "the primary key 'k' must have type 'id'",
        ),
        (
            "[tables.t]\ndelimiter = ',,'\ncolumns = [{ name = 'id', type = 'id' }]",
            "delimiter must be one character",
        ),
        (
            "[tables.t]\ncolumns = [{ name = 'id', type = 'id' }, { name = 'id', type = 'text' }]",
            "column 'id' is declared twice",
        ),
        (
            "[tables.t]\ncolumns = [{ name = 'id', type = 'id' },"
            " { name = 's', type = 'text', max_length = 5000 }]",
            "max_length must be a whole number from 1 to 4000",
        ),
        ("[tables.t]\ncolumns = [{ name = 'id', type = 'id', required = 'yes' }]", "true or false"),
        ("tables = 3", "declares no table"),
        ("[tables.t\n", "is not valid TOML"),
    ],
)
def test_each_mistake_reads_as_what_to_fix(table: str, problem: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(table, source="c.toml")

    assert problem in str(caught.value)
    assert str(caught.value).startswith("c.toml: ")


def test_a_service_pointed_at_a_broken_catalog_does_not_start(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.toml"
    broken.write_text("[tables.t]\ncolumns = [{ name = 'id', type = 'uuid' }]\n")

    with pytest.raises(ValueError, match="unknown type 'uuid'"):
        Settings(catalog_file=broken)
    with pytest.raises(ValueError, match="cannot be read"):
        Settings(catalog_file=tmp_path / "missing.toml")
