"""JSON batch rows become the same text fields a CSV line gives, so one validator serves both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from common.model.catalog import current
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
