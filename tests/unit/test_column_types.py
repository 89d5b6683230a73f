"""Every column type's rules on a catalog of its own (tests/support/catalogs/shop.toml): what
a row may hold, what it becomes, and why a bad one is rejected."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from common.model.catalog import Column, ColumnType, TableSpec
from common.model.catalog_file import load_catalog
from common.model.rows import ValidRows
from common.model.rules import decode, encode
from common.pipeline.csvparse import parse_block
from common.pipeline.validation import validate

SHOP = load_catalog(Path(__file__).parents[1] / "support" / "catalogs" / "shop.toml")
LINES = SHOP.table("order_lines")  # tab-separated
ORDERS = SHOP.table("orders")
REGIONS = SHOP.table("regions")  # ;-separated, unique name
STORES = SHOP.table("stores")
PRODUCTS = SHOP.table("products")  # |-separated, unique sku, NULL marker

GOOD = {
    LINES: {
        "id": "1",
        "order_id": "2",
        "product_id": "3",
        "quantity": "-4",
        "unit_price": "12.5",
        "shipped_on": "2021-07-27",
        "delivered_at": "2021-07-28T10:00:00+02:00",
    },
    ORDERS: {"id": "1", "store_id": "2", "placed_at": "2021-07-27T16:02:08Z", "note": "soon"},
    REGIONS: {"region_id": "1", "name": "North"},
    STORES: {
        "code": "N-01",
        "store_id": "7",
        "region_id": "1",
        "opened": "2020-02-29",
        "active": "TRUE",
    },
    PRODUCTS: {
        "id": "1",
        "sku": "SKU-1",
        "price": "9.99",
        "weight_kg": "0.25",
        "discontinued": "false",
    },
}


def line(spec: TableSpec, **changes: str) -> str:
    fields = GOOD[spec] | changes
    return spec.delimiter.join(fields[name] for name in spec.column_names)


def check(spec: TableSpec, *lines: str) -> ValidRows:
    data = "".join(f"{text}\n" for text in lines).encode()
    return validate(spec, parse_block(data, 1, spec, at_file_start=True))


def rules(result: ValidRows) -> dict[int, list[tuple[str, str]]]:
    """Line → [(column, rule)] of every rejected row."""
    return {r.line: [(e.column, e.rule) for e in r.errors] for r in result.rejected}


def the_value(spec: TableSpec, column: str, text: str) -> object:
    """What ``text`` in ``column`` of an otherwise good row becomes, or the rules it breaks."""
    result = check(spec, line(spec, **{column: text}))
    if result.rejected:
        return [rule for _, rule in rules(result)[1]]
    return result.table.column(column).to_pylist()[0]


def test_good_rows_of_every_type_are_kept_with_their_final_arrow_types() -> None:
    # Given a good row of a table holding every type
    result = check(LINES, line(LINES))

    # Then it is kept, typed
    assert result.rejected == []
    assert result.table.select(LINES.column_names).to_pylist() == [
        {
            "id": 1,
            "order_id": 2,
            "product_id": 3,
            "quantity": -4,
            "unit_price": Decimal("12.5000"),
            "shipped_on": date(2021, 7, 27),
            "delivered_at": datetime(2021, 7, 28, 8, 0),
        }
    ]
    types = dict(zip(result.table.column_names, result.table.schema.types, strict=True))
    assert types["quantity"] == pa.int64()
    assert types["unit_price"] == pa.decimal128(12, 4)
    assert types["shipped_on"] == pa.date32()
    assert types["delivered_at"] == pa.timestamp("us")
    stores = check(STORES, line(STORES))
    assert stores.table.schema.field("active").type == pa.bool_()
    products = check(PRODUCTS, line(PRODUCTS))
    assert products.table.schema.field("weight_kg").type == pa.float64()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("+17", 17),
        (" -005 ", -5),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", ["out_of_range"]),
        ("-9223372036854775809", ["out_of_range"]),
        ("1.0", ["not_integer"]),
        ("1e3", ["not_integer"]),
        ("four", ["not_integer"]),
        ("", ["required"]),
    ],
)
def test_integers_are_signed_64_bit_whole_numbers(text: str, expected: object) -> None:
    assert the_value(LINES, "quantity", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12345678.1234", Decimal("12345678.1234")),  # precision 12, scale 4
        ("-0.5", Decimal("-0.5000")),
        ("+.5", Decimal("0.5000")),
        ("7.", Decimal("7.0000")),
        ("00012.50000000", Decimal("12.5000")),  # zeros that hold no digit of the value
        ("123456789.5", ["too_many_digits"]),  # 9 digits before the point, 8 allowed
        ("1.23456", ["too_many_digits"]),  # refused, never rounded
        ("1,5", ["not_decimal"]),
        ("1e3", ["not_decimal"]),
        (".", ["not_decimal"]),
        ("NaN", ["not_decimal"]),
    ],
)
def test_decimals_keep_their_exact_value_within_precision_and_scale(
    text: str, expected: object
) -> None:
    assert the_value(LINES, "unit_price", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.5", 2.5),
        ("-1e-3", -0.001),
        (".5E+2", 50.0),
        ("7", 7.0),
        ("nan", ["not_float"]),
        ("inf", ["not_float"]),
        ("-Infinity", ["not_float"]),
        ("1e400", ["not_float"]),
        ("0x10", ["not_float"]),
        ("", None),  # an optional column's default null marker
    ],
)
def test_floats_are_finite_numbers(text: str, expected: object) -> None:
    assert the_value(PRODUCTS, "weight_kg", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("False", False),
        ("0", False),
        ("yes", ["not_boolean"]),
        ("2", ["not_boolean"]),
        ("", ["required"]),
    ],
)
def test_booleans_are_true_false_1_or_0_in_any_case(text: str, expected: object) -> None:
    assert the_value(STORES, "active", text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-02-29", date(2020, 2, 29)),
        ("0001-01-01", date(1, 1, 1)),
        ("9999-12-31", date(9999, 12, 31)),
        ("2021-02-30", ["invalid_date"]),
        ("2021-13-01", ["invalid_date"]),
        ("0000-01-01", ["invalid_date"]),
        ("2021-7-27", ["not_date"]),
        ("27/07/2021", ["not_date"]),
        ("2021-07-27T00:00:00Z", ["not_date"]),
    ],
)
def test_dates_are_iso_8601_calendar_dates_that_exist(text: str, expected: object) -> None:
    assert the_value(STORES, "opened", text) == expected


def test_an_impossible_date_leaves_the_good_dates_of_its_block_alone() -> None:
    result = check(
        STORES,
        line(STORES, store_id="1", opened="2021-02-28"),
        line(STORES, store_id="2", opened="2021-02-30"),
    )

    assert rules(result) == {2: [("opened", "invalid_date")]}
    assert result.table.column("opened").to_pylist() == [date(2021, 2, 28)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-07-27T16:02:08Z", datetime(2021, 7, 27, 16, 2, 8)),
        ("2021-07-27T18:02:08+02:00", datetime(2021, 7, 27, 16, 2, 8)),
        ("2021-07-27T16:02:08", datetime(2021, 7, 27, 16, 2, 8)),  # assume_utc
        ("2021-07-27 16:02", datetime(2021, 7, 27, 16, 2)),
        ("2021-07-27", ["not_iso8601"]),
        ("2021-02-30T00:00:00", ["invalid_datetime"]),
    ],
)
def test_a_timestamp_without_offset_is_utc_where_the_column_assumes_so(
    text: str, expected: object
) -> None:
    assert the_value(ORDERS, "placed_at", text) == expected


def test_a_timestamp_without_offset_is_refused_where_the_column_requires_one() -> None:
    assert the_value(LINES, "delivered_at", "2021-07-27T16:02:08") == ["missing_timezone"]


def test_text_is_held_to_the_columns_own_max_length() -> None:
    assert the_value(STORES, "code", "X" * 12) == "X" * 12
    assert the_value(STORES, "code", "X" * 13) == ["too_long"]
    assert the_value(ORDERS, "note", "é" * 200) == "é" * 200
    assert the_value(ORDERS, "note", "é" * 201) == ["too_long"]
    assert the_value(ORDERS, "note", "bell\x07") == ["invalid_character"]


@pytest.mark.parametrize(
    ("spec", "column", "marker"),
    [
        (LINES, "shipped_on", ""),
        (LINES, "shipped_on", "   "),
        (LINES, "delivered_at", "-"),
        (LINES, "delivered_at", " - "),
        (ORDERS, "note", ""),
        (PRODUCTS, "weight_kg", ""),
        (PRODUCTS, "discontinued", "NULL"),
    ],
)
def test_an_optional_columns_null_marker_is_null_and_breaks_no_rule(
    spec: TableSpec, column: str, marker: str
) -> None:
    assert the_value(spec, column, marker) is None


def test_only_the_columns_own_marker_means_no_value() -> None:
    # "-" is no value in delivered_at, but an empty field is no timestamp there
    assert the_value(LINES, "delivered_at", "") == ["not_iso8601"]
    # and NULL is no value in discontinued, an empty field no boolean
    assert the_value(PRODUCTS, "discontinued", "") == ["not_boolean"]
    assert the_value(PRODUCTS, "weight_kg", "NULL") == ["not_float"]


def test_a_value_repeated_in_a_unique_column_is_kept_once() -> None:
    # Given three regions, the third named like the first
    result = check(
        REGIONS,
        line(REGIONS, region_id="1", name="North"),
        line(REGIONS, region_id="2", name="South"),
        line(REGIONS, region_id="3", name=" North "),
    )

    # Then the later one is rejected, naming the value and where it was seen
    assert rules(result) == {3: [("name", "duplicate_value")]}
    [error] = result.rejected[0].errors
    assert error.message == "name 'North' appears earlier in the same input"
    assert result.table.column("region_id").to_pylist() == [1, 2]


def test_a_row_repeating_its_id_and_a_unique_value_breaks_both_rules() -> None:
    result = check(
        PRODUCTS,
        line(PRODUCTS, id="1", sku="A"),
        line(PRODUCTS, id="1", sku="A"),
        line(PRODUCTS, id="2", sku="A"),
    )

    assert rules(result) == {
        2: [("id", "duplicate_id"), ("sku", "duplicate_value")],
        3: [("sku", "duplicate_value")],
    }


def test_rows_without_a_value_in_a_unique_column_are_no_duplicates() -> None:
    email = Column("email", ColumnType.TEXT, required=False, unique=True)
    spec = TableSpec("contacts", (Column("id", ColumnType.ID), email), delimiter=";")

    result = check(spec, "1;", "2;", "3;a@b", "4;a@b")

    assert rules(result) == {4: [("email", "duplicate_value")]}
    assert result.table.column("email").to_pylist() == [None, None, "a@b"]


def test_messages_say_the_columns_own_settings_and_are_told_again_from_storage() -> None:
    # Given a row breaking rules that speak of the column's settings
    result = check(
        LINES, line(LINES, unit_price="1.23456", shipped_on="soon", delivered_at="later")
    )
    [rejection] = result.rejected

    # Then its messages say them, and read back from storage they say the same
    assert [e.message for e in rejection.errors] == [
        "unit_price must have at most 8 digits before the decimal point and 4 after",
        "shipped_on must be an ISO 8601 date, like 2021-07-27, or empty for no value",
        "delivered_at must be an ISO 8601 date and time, like 2021-07-27T16:02:08Z, "
        "or - for no value",
    ]
    again = decode(LINES, rejection.raw, encode(rejection.errors), from_json=False)
    assert again == rejection.errors


def test_a_unique_value_already_in_the_table_is_told_apart_from_one_in_the_input() -> None:
    # The storage names a value found in the table with the same rule and no detail
    stored = "name:duplicate_value"

    [error] = decode(REGIONS, "9;North", stored, from_json=False)

    assert error.message == "name 'North' already exists in regions"


@pytest.mark.parametrize(
    ("spec", "column", "text", "message"),
    [
        (STORES, "code", "X" * 13, "code must be at most 12 characters"),
        (
            LINES,
            "quantity",
            "9" * 20,
            "quantity must be between -9223372036854775808 and 9223372036854775807",
        ),
        (
            PRODUCTS,
            "price",
            "1234567890",
            "price must have at most 8 digits before the decimal point and 2 after",
        ),
        (
            PRODUCTS,
            "weight_kg",
            "heavy",
            "weight_kg must be a finite number, like 2.5 or 1e-3, or empty for no value",
        ),
        (
            PRODUCTS,
            "discontinued",
            "no",
            "discontinued must be true, false, 1 or 0, or NULL for no value",
        ),
        (STORES, "active", "no", "active must be true, false, 1 or 0"),
        (STORES, "opened", "2021-02-30", "opened is not a real date in the years 1 to 9999"),
    ],
)
def test_each_rule_says_what_the_column_accepts(
    spec: TableSpec, column: str, text: str, message: str
) -> None:
    [rejection] = check(spec, line(spec, **{column: text})).rejected

    assert [e.message for e in rejection.errors] == [message]
    assert decode(spec, rejection.raw, encode(rejection.errors), from_json=False) == (
        rejection.errors
    )
