"""JSON batch rows become the same text fields a CSV line gives, so one validator serves both."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from common.model.catalog import TableSpec, current
from common.model.catalog_file import load_catalog
from common.pipeline.jsonrows import rows_from_json
from common.pipeline.validation import validate

HIRED = current().tables["hired_employees"]
DEPARTMENTS = current().tables["departments"]


def a_hire(**changes: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "name": "Ada",
        "datetime": "2021-07-27T16:02:08Z",
        "department_id": 1,
        "job_id": 2,
    } | changes


def test_rows_are_numbered_by_their_index_in_the_batch() -> None:
    # Given three valid rows
    batch = [a_hire(id=10), a_hire(id=11), a_hire(id=12)]

    # When they are read
    raw = rows_from_json(HIRED, batch)

    # Then each keeps its 0-based index and its JSON as raw text
    assert raw.line.to_pylist() == [0, 1, 2]
    assert [orjson.loads(r) for r in raw.raw.to_pylist()] == batch
    assert raw.rejected == []


def test_numbers_and_strings_both_give_the_csv_spelling() -> None:
    raw = rows_from_json(HIRED, [a_hire(id="5", department_id=3, job_id="4")])

    assert {name: col.to_pylist() for name, col in raw.fields.items()} == {
        "id": ["5"],
        "name": ["Ada"],
        "datetime": ["2021-07-27T16:02:08Z"],
        "department_id": ["3"],
        "job_id": ["4"],
    }


def test_valid_json_rows_validate_to_typed_rows() -> None:
    result = validate(HIRED, rows_from_json(HIRED, [a_hire(datetime="2021-07-27T18:02:08+02:00")]))

    assert result.rejected == []
    assert result.table.select(HIRED.column_names).to_pylist() == [
        {
            "id": 1,
            "name": "Ada",
            "datetime": datetime(2021, 7, 27, 16, 2, 8),
            "department_id": 1,
            "job_id": 2,
        }
    ]


def test_a_missing_or_null_field_is_required() -> None:
    # Given one row without a name and one with a null job
    batch = [{k: v for k, v in a_hire(id=1).items() if k != "name"}, a_hire(id=2, job_id=None)]

    result = validate(HIRED, rows_from_json(HIRED, batch))

    assert {r.line: [(e.column, e.rule) for e in r.errors] for r in result.rejected} == {
        0: [("name", "required")],
        1: [("job_id", "required")],
    }


def test_values_no_csv_field_could_hold_are_the_wrong_type() -> None:
    batch = [a_hire(id=True), a_hire(name=["A", "B"]), a_hire(job_id={"id": 2})]

    raw = rows_from_json(HIRED, batch)

    assert len(raw) == 0
    assert {r.line: [(e.column, e.rule) for e in r.errors] for r in raw.rejected} == {
        0: [("id", "wrong_type")],
        1: [("name", "wrong_type")],
        2: [("job_id", "wrong_type")],
    }


def test_unknown_keys_reject_the_row_and_are_named() -> None:
    raw = rows_from_json(DEPARTMENTS, [{"id": 1, "department": "Sales", "budget": 3}])

    assert len(raw) == 0
    [rejection] = raw.rejected
    assert [(e.column, e.rule) for e in rejection.errors] == [("budget", "unknown_column")]
    assert "budget" in rejection.errors[0].message


def test_rejected_and_kept_rows_keep_their_own_indexes() -> None:
    batch: list[dict[str, Any]] = [
        {"id": 1, "department": "Sales"},
        {"id": [1]},
        {"id": 3, "department": "Legal"},
    ]

    result = validate(DEPARTMENTS, rows_from_json(DEPARTMENTS, batch))

    assert result.table.column("line").to_pylist() == [0, 2]
    assert [r.line for r in result.rejected] == [1]


SHOP = load_catalog(Path(__file__).parents[1] / "support" / "catalogs" / "shop.toml")
PRODUCTS = SHOP.table("products")
STORES = SHOP.table("stores")
LINES = SHOP.table("order_lines")


def a_product(**changes: Any) -> dict[str, Any]:
    return {
        "id": 1,
        "sku": "SKU-1",
        "price": "9.99",
        "weight_kg": 0.25,
        "discontinued": False,
    } | changes


def typed(spec: TableSpec, row: dict[str, Any]) -> dict[str, Any]:
    result = validate(spec, rows_from_json(spec, [row]))
    assert result.rejected == []
    return result.table.select(spec.column_names).to_pylist()[0]


def test_json_values_of_every_type_become_typed_rows() -> None:
    assert typed(PRODUCTS, a_product()) == {
        "id": 1,
        "sku": "SKU-1",
        "price": Decimal("9.99"),
        "weight_kg": 0.25,
        "discontinued": False,
    }
    assert (
        typed(
            STORES,
            {"code": "N", "store_id": 7, "region_id": "1", "opened": "2020-02-29", "active": True},
        )["active"]
        is True
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12345678.99", Decimal("12345678.99")),  # a string keeps every digit
        (12.5, Decimal("12.50")),
        (1e7, Decimal("10000000.00")),  # a float in its decimal spelling, without exponent
        (3, Decimal("3.00")),
    ],
)
def test_decimals_take_numbers_or_exact_strings(value: Any, expected: Decimal) -> None:
    assert typed(PRODUCTS, a_product(price=value))["price"] == expected


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("TRUE", True), (0, False)])
def test_booleans_take_true_and_false_and_their_csv_spellings(value: Any, expected: bool) -> None:
    assert typed(PRODUCTS, a_product(discontinued=value))["discontinued"] is expected


def test_null_or_a_missing_key_is_no_value_in_an_optional_column() -> None:
    # Given a product with a null weight and no discontinued key (whose CSV marker is NULL)
    row = {k: v for k, v in a_product(weight_kg=None).items() if k != "discontinued"}

    # Then both are null
    values = typed(PRODUCTS, row)
    assert (values["weight_kg"], values["discontinued"]) == (None, None)


def test_a_boolean_is_the_wrong_type_outside_a_boolean_column() -> None:
    raw = rows_from_json(PRODUCTS, [a_product(price=True, weight_kg=[1])])

    [rejection] = raw.rejected
    assert [(e.column, e.rule, e.message) for e in rejection.errors] == [
        ("price", "wrong_type", "price must be a string or a number"),
        ("weight_kg", "wrong_type", "weight_kg must be a string or a number, or null"),
    ]


def test_a_json_row_breaks_the_same_rules_as_a_csv_line() -> None:
    batch = [
        a_product(id=1, price="1.234"),
        a_product(id=2, discontinued="maybe"),
        a_product(id=3, weight_kg=float("inf")),
        a_product(id=4),
        a_product(id=5),
    ]

    result = validate(PRODUCTS, rows_from_json(PRODUCTS, batch))

    assert {r.line: [(e.column, e.rule) for e in r.errors] for r in result.rejected} == {
        0: [("price", "too_many_digits")],
        1: [("discontinued", "not_boolean")],
        2: [("weight_kg", "not_float")],
        4: [("sku", "duplicate_value")],
    }
