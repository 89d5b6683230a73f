"""A table's own delimiter and leading rows: lines split on it with and without quotes, and
the messages and header check read stored lines the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.model.catalog import TableSpec, current
from common.model.catalog_file import load_catalog
from common.model.options import LoadOptions
from common.model.rules import decode, looks_like_header
from common.pipeline.csvparse import parse_block

SHOP = load_catalog(Path(__file__).parents[1] / "support" / "catalogs" / "shop.toml")
LINES = SHOP.table("order_lines")  # tab
REGIONS = SHOP.table("regions")  # ;
PRODUCTS = SHOP.table("products")  # |, skip_leading_rows = 1


def fields(spec: TableSpec, text: str) -> list[list[str]]:
    rows = parse_block(text.encode(), 1, spec, at_file_start=True)
    assert rows.rejected == []
    columns = [rows.fields[name].to_pylist() for name in spec.column_names]
    return [list(row) for row in zip(*columns, strict=True)]


@pytest.mark.parametrize(
    ("spec", "text", "expected"),
    [
        (REGIONS, "1;North, East\n", [["1", "North, East"]]),
        (REGIONS, '1;"North; East"\n', [["1", "North; East"]]),
        (REGIONS, '1;"say ""hi"""\n2;South\n', [["1", 'say "hi"'], ["2", "South"]]),
        (PRODUCTS, "1|A,B|1.5|2|true\n", [["1", "A,B", "1.5", "2", "true"]]),
        (PRODUCTS, '1|"A|B"|1.5||NULL\n', [["1", "A|B", "1.5", "", "NULL"]]),
        (LINES, "1\t2\t3\t4\t5\t\t-\n", [["1", "2", "3", "4", "5", "", "-"]]),
        (LINES, '1\t2\t3\t4\t5\t"\t"\t-\n', [["1", "2", "3", "4", "5", "\t", "-"]]),
    ],
)
def test_lines_split_on_the_tables_delimiter_with_or_without_quotes(
    spec: TableSpec, text: str, expected: list[list[str]]
) -> None:
    assert fields(spec, text) == expected


def test_the_field_count_is_of_the_tables_delimiter() -> None:
    # Given regions (two fields) written with commas, then with one ; too many
    rows = parse_block(b"1,North\n2;South;x\n", 1, REGIONS, at_file_start=True)

    # Then both lines have the wrong number of fields
    assert [(r.line, [(e.rule, e.detail) for e in r.errors]) for r in rows.rejected] == [
        (1, [("field_count", "1")]),
        (2, [("field_count", "3")]),
    ]


def test_a_line_of_tabs_in_a_tab_separated_table_is_no_blank_line() -> None:
    rows = parse_block(b"\t\t\t\t\t\t\n  \n", 1, LINES, at_file_start=True)

    assert len(rows) == 1  # seven empty fields, for the validator to find required
    assert [(r.line, r.errors[0].rule) for r in rows.rejected] == [(2, "blank_line")]


def test_a_stored_line_is_read_again_with_its_tables_delimiter() -> None:
    [error] = decode(REGIONS, '7;"North; East"', "name:duplicate_value", from_json=False)
    assert error.message == "name 'North; East' already exists in regions"

    [error] = decode(LINES, "4\t9\t3\t1\t1\t\t-", "order_id:unknown_reference", from_json=False)
    assert error.message == "orders has no id 9"

    [error] = decode(REGIONS, '1;"North', "row:quoting", from_json=False)
    assert error.message.startswith("broken quoting: ")


def test_a_header_is_recognised_in_the_tables_delimiter() -> None:
    assert looks_like_header(PRODUCTS, "id|SKU|Price|Weight KG|discontinued")
    assert not looks_like_header(PRODUCTS, "id,sku,price,weight_kg,discontinued")
    assert looks_like_header(LINES, "\t".join(LINES.column_names))


def test_leading_rows_are_the_tables_own_unless_the_load_says_otherwise() -> None:
    departments = current().table("departments")

    assert LoadOptions().leading_rows(PRODUCTS) == 1
    assert LoadOptions().leading_rows(departments) == 0
    assert LoadOptions(skip_leading_rows=0).leading_rows(PRODUCTS) == 0
    assert LoadOptions(skip_leading_rows=3).leading_rows(departments) == 3


def test_leading_rows_given_explicitly_are_kept_with_the_job() -> None:
    # Left out they are nobody's change; given, even as 0, they are the job's own
    assert LoadOptions().changed() == {}
    assert LoadOptions.from_json(LoadOptions(skip_leading_rows=0).as_json()) == LoadOptions(
        skip_leading_rows=0
    )
    assert LoadOptions.from_json(None).skip_leading_rows is None
