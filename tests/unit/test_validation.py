"""The data rules that need no database, from CSV bytes to typed rows or reasons."""

from __future__ import annotations

from datetime import datetime

import pytest

from common.model.catalog import TableSpec, current
from common.model.rows import ValidRows
from common.pipeline.csvparse import parse_block
from common.pipeline.validation import validate

HIRED = current().tables["hired_employees"]
DEPARTMENTS = current().tables["departments"]
GOOD = ["7", "Ada Lovelace", "2021-07-27T16:02:08Z", "1", "2"]


def check(text: str | bytes, spec: TableSpec = HIRED, first_line: int = 1) -> ValidRows:
    data = text.encode() if isinstance(text, str) else text
    return validate(spec, parse_block(data, first_line, spec, at_file_start=first_line == 1))


def hired_line(**changes: str) -> str:
    fields = dict(zip(HIRED.column_names, GOOD, strict=True)) | changes
    return ",".join(fields[name] for name in HIRED.column_names) + "\n"


def broken(result: ValidRows) -> dict[int, list[tuple[str, str]]]:
    """Line → [(column, rule)] of every rejected row."""
    return {r.line: [(e.column, e.rule) for e in r.errors] for r in result.rejected}


def test_a_good_row_is_kept_with_its_final_types() -> None:
    result = check(hired_line())

    assert result.rejected == []
    assert result.table.select(HIRED.column_names).to_pylist() == [
        {
            "id": 7,
            "name": "Ada Lovelace",
            "datetime": datetime(2021, 7, 27, 16, 2, 8),
            "department_id": 1,
            "job_id": 2,
        }
    ]
    assert result.table.column("line").to_pylist() == [1]
    assert result.table.column("raw").to_pylist() == [hired_line().rstrip("\n")]


def test_text_and_ids_are_trimmed() -> None:
    result = check(hired_line(id=" 7 ", name="  Ada  ", department_id="+1", job_id=" 002"))

    row = result.table.select(HIRED.column_names).to_pylist()[0]
    assert (row["id"], row["name"], row["department_id"], row["job_id"]) == (7, "Ada", 1, 2)


@pytest.mark.parametrize("column", HIRED.column_names)
@pytest.mark.parametrize("blank", ["", "   "])
def test_every_field_is_required(column: str, blank: str) -> None:
    result = check(hired_line(**{column: blank}))

    assert result.valid_count == 0
    assert broken(result) == {1: [(column, "required")]}
    assert result.rejected[0].errors[0].message == f"{column} is required"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("abc", "not_integer"),
        ("1.5", "not_integer"),
        ("1e3", "not_integer"),
        ("0", "not_positive"),
        ("-4", "not_positive"),
        ("000", "not_positive"),
        ("1234567890123456789", "out_of_range"),
        ("99999999999999999999999", "out_of_range"),
    ],
)
@pytest.mark.parametrize("column", ["id", "department_id", "job_id"])
def test_ids_are_positive_integers_that_fit(column: str, value: str, rule: str) -> None:
    result = check(hired_line(**{column: value}))

    assert broken(result) == {1: [(column, rule)]}


def test_the_largest_id_that_fits_is_accepted() -> None:
    result = check(hired_line(id="999999999999999999"))

    assert result.table.column("id").to_pylist() == [999_999_999_999_999_999]


def test_text_is_at_most_255_characters() -> None:
    result = check(hired_line(id="1", name="x" * 255) + hired_line(id="2", name="y" * 256))

    assert result.table.column("id").to_pylist() == [1]
    assert broken(result) == {2: [("name", "too_long")]}


@pytest.mark.parametrize("control", ["\x00", "\x01", "\t", "\x1b", "\x7f", "\x85", "\x9f"])
def test_text_with_a_control_character_is_rejected(control: str) -> None:
    result = check(hired_line(name=f"Ada{control}Lovelace"), spec=HIRED)

    assert broken(result) == {1: [("name", "invalid_character")]}


@pytest.mark.parametrize("control", ["\x00", "\t", "\r", "\x7f", "\x85"])
def test_with_quoted_newlines_other_control_characters_are_still_rejected(control: str) -> None:
    data = hired_line(name=f'"Ada{control}Lovelace"').encode()

    result = validate(HIRED, parse_block(data, 1, HIRED, True, quoted_newlines=True), True)

    assert broken(result) == {1: [("name", "invalid_character")]}


@pytest.mark.parametrize("line_break", ["\n", "\r\n"])
def test_a_line_break_in_a_quoted_field_is_kept_only_with_quoted_newlines(line_break: str) -> None:
    # Given a name whose quoted field spans two lines, then a good row
    data = (hired_line(name=f'"Ada{line_break}Lovelace"') + hired_line(id="8")).encode()

    # When it is validated with quoted newlines allowed, and without
    allowed = validate(HIRED, parse_block(data, 1, HIRED, True, quoted_newlines=True), True)
    refused = check(data)

    # Then with the option the name keeps its line break and the next row is on line 3
    assert broken(allowed) == {}
    assert allowed.table.column("name").to_pylist() == [f"Ada{line_break}Lovelace", "Ada Lovelace"]
    assert allowed.table.column("line").to_pylist() == [1, 3]
    # And without it both halves of the record are rejected on their own lines
    assert set(broken(refused)) == {1, 2}


def test_letters_joiners_and_marks_are_not_control_characters() -> None:
    name = "Zo\u00eb \U0001f469\u200d\U0001f4bb e\u0301 \u00a0\u674e"
    result = check(hired_line(name=name), spec=HIRED)

    assert broken(result) == {}


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2021-07-27T16:02:08", "missing_timezone"),
        ("2021-07-27", "missing_timezone"),
        ("27/07/2021 16:02", "not_iso8601"),
        ("yesterday", "not_iso8601"),
        ("2021-02-30T00:00:00Z", "invalid_datetime"),
        ("2021-13-01T00:00:00Z", "invalid_datetime"),
        ("2021-07-27T25:00:00Z", "invalid_datetime"),
    ],
)
def test_datetimes_are_iso8601_with_a_time_zone_and_real(value: str, rule: str) -> None:
    result = check(hired_line(datetime=value))

    assert broken(result) == {1: [("datetime", rule)]}


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2021-07-27T16:02:08Z", datetime(2021, 7, 27, 16, 2, 8)),
        ("2021-07-27T18:02:08+02:00", datetime(2021, 7, 27, 16, 2, 8)),
        ("2021-07-27T11:32:08-04:30", datetime(2021, 7, 27, 16, 2, 8)),
        ("2021-07-27T21:32:08.250000+0530", datetime(2021, 7, 27, 16, 2, 8, 250000)),
        ("2021-01-01T01:00:00+02:00", datetime(2020, 12, 31, 23, 0, 0)),
        ("2021-07-27 16:02Z", datetime(2021, 7, 27, 16, 2)),
    ],
)
def test_datetimes_are_stored_in_utc(value: str, utc: datetime) -> None:
    result = check(hired_line(datetime=value))

    assert result.rejected == []
    assert result.table.column("datetime").to_pylist() == [utc]


def test_one_impossible_date_does_not_spoil_the_other_rows_of_its_block() -> None:
    # Given a block mixing offsets with one impossible date
    text = (
        hired_line(id="1", datetime="2021-03-01T12:00:00+01:00")
        + hired_line(id="2", datetime="2021-02-30T00:00:00Z")
        + hired_line(id="3", datetime="2021-03-01T12:00:00Z")
    )

    result = check(text)

    # Then the other rows keep their correctly converted times
    assert broken(result) == {2: [("datetime", "invalid_datetime")]}
    assert result.table.select(["id", "datetime"]).to_pylist() == [
        {"id": 1, "datetime": datetime(2021, 3, 1, 11, 0)},
        {"id": 3, "datetime": datetime(2021, 3, 1, 12, 0)},
    ]


def test_a_row_reports_every_column_it_breaks() -> None:
    result = check(hired_line(id="0", name="", datetime="soon", job_id="x"))

    assert broken(result) == {
        1: [
            ("id", "not_positive"),
            ("name", "required"),
            ("datetime", "not_iso8601"),
            ("job_id", "not_integer"),
        ]
    }


def test_the_first_row_of_an_id_wins_and_later_ones_are_duplicates() -> None:
    # Given a block where id 5 appears on lines 1, 3 and 4
    text = "5,Sales\n6,Legal\n5,Support\n5,Training\n"

    result = check(text, spec=DEPARTMENTS)

    # Then line 1 is kept and lines 3 and 4 are rejected as duplicates
    assert result.table.select(["line", "id", "department"]).to_pylist() == [
        {"line": 1, "id": 5, "department": "Sales"},
        {"line": 2, "id": 6, "department": "Legal"},
    ]
    assert broken(result) == {3: [("id", "duplicate_id")], 4: [("id", "duplicate_id")]}


def test_an_invalid_first_row_does_not_make_the_next_one_a_duplicate() -> None:
    result = check("5,\n5,Legal\n", spec=DEPARTMENTS)

    assert result.table.column("department").to_pylist() == ["Legal"]
    assert broken(result) == {1: [("department", "required")]}


def test_line_level_rejections_come_with_the_rule_rejections_in_line_order() -> None:
    # Given one block holding every kind of line problem next to good rows
    data = (
        "\ufeff1,Sales\r\n".encode()
        + b"\r\n"
        + b"2,Le\xffgal\r\n"
        + b'3,"Unclosed\r\n'
        + b"4,a,b\r\n"
        + b"5,Research\r\n"
        + b"0,Zero\r\n"
    )

    result = check(data, spec=DEPARTMENTS)

    # Then the good rows are kept (BOM and CRLF gone) and each bad line has its reason
    assert result.table.select(["line", "id", "department"]).to_pylist() == [
        {"line": 1, "id": 1, "department": "Sales"},
        {"line": 6, "id": 5, "department": "Research"},
    ]
    assert [r.line for r in result.rejected] == [2, 3, 4, 5, 7]
    assert broken(result) == {
        2: [("row", "blank_line")],
        3: [("row", "encoding")],
        4: [("row", "quoting")],
        5: [("row", "field_count")],
        7: [("id", "not_positive")],
    }


def test_an_empty_block_yields_nothing() -> None:
    result = check(b"", first_line=3)

    assert result.valid_count == 0
    assert result.rejected == []
