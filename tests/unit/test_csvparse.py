"""Splitting CSV blocks into rows: one physical line per row, bad lines rejected on their own."""

from __future__ import annotations

import pytest

from common.errors import NotText
from common.model.catalog import current
from common.model.rows import RawRows
from common.pipeline.csvparse import check_is_text, parse_block

HIRED = current().tables["hired_employees"]
DEPARTMENTS = current().tables["departments"]


def rows_of(parsed: RawRows) -> list[tuple[int, list[str]]]:
    """(line, fields) of every row that was split, in line order."""
    names = list(parsed.fields)
    columns = [parsed.fields[n].to_pylist() for n in names]
    return [(line, [col[i] for col in columns]) for i, line in enumerate(parsed.line.to_pylist())]


def rejected_rules(parsed: RawRows) -> dict[int, list[str]]:
    return {r.line: [e.rule for e in r.errors] for r in parsed.rejected}


def test_plain_lines_become_rows_numbered_from_the_first_line_of_the_block() -> None:
    # Given a block that starts at line 41 of its file
    data = b"1,Sales\n2,Legal\n3,Support\n"

    # When it is parsed
    parsed = parse_block(data, 41, DEPARTMENTS, at_file_start=False)

    # Then every line is a row carrying its own line number and raw text
    assert rows_of(parsed) == [(41, ["1", "Sales"]), (42, ["2", "Legal"]), (43, ["3", "Support"])]
    assert parsed.raw.to_pylist() == ["1,Sales", "2,Legal", "3,Support"]
    assert parsed.rejected == []


def test_a_last_line_without_a_newline_is_still_a_row() -> None:
    parsed = parse_block(b"1,Sales\n2,Legal", 1, DEPARTMENTS, at_file_start=True)

    assert rows_of(parsed) == [(1, ["1", "Sales"]), (2, ["2", "Legal"])]


def test_crlf_line_endings_are_removed_from_the_last_field() -> None:
    parsed = parse_block(b"1,Sales\r\n2,Legal\r\n", 1, DEPARTMENTS, at_file_start=True)

    assert rows_of(parsed) == [(1, ["1", "Sales"]), (2, ["2", "Legal"])]
    assert parsed.raw.to_pylist() == ["1,Sales", "2,Legal"]


def test_a_bom_is_stripped_at_the_start_of_the_file_only() -> None:
    data = "\ufeff1,Sales\n".encode()

    at_start = parse_block(data, 1, DEPARTMENTS, at_file_start=True)
    elsewhere = parse_block(data, 7, DEPARTMENTS, at_file_start=False)

    assert rows_of(at_start) == [(1, ["1", "Sales"])]
    assert rows_of(elsewhere) == [(7, ["\ufeff1", "Sales"])]


def test_quoted_fields_may_hold_commas_and_doubled_quotes() -> None:
    data = b'1,"Smith, John",2021-01-01T00:00:00Z,1,2\n2,"Say ""hi""",2021-01-01T00:00:00Z,1,2\n'

    parsed = parse_block(data, 1, HIRED, at_file_start=True)

    assert [fields[1] for _, fields in rows_of(parsed)] == ["Smith, John", 'Say "hi"']
    assert parsed.rejected == []


def test_quoted_and_plain_lines_keep_their_file_order() -> None:
    data = b'1,"A, a"\n2,B\n3,"C"\n4,D\n'

    parsed = parse_block(data, 10, DEPARTMENTS, at_file_start=False)

    assert rows_of(parsed) == [
        (10, ["1", "A, a"]),
        (11, ["2", "B"]),
        (12, ["3", "C"]),
        (13, ["4", "D"]),
    ]


def test_a_line_with_the_wrong_number_of_fields_is_rejected_alone() -> None:
    # Given a block whose second line has too few fields and third too many
    data = b"1,Sales\n2\n3,Legal,extra\n4,Support\n"

    # When it is parsed
    parsed = parse_block(data, 1, DEPARTMENTS, at_file_start=True)

    # Then only those lines are rejected, with the counts in the message
    assert rows_of(parsed) == [(1, ["1", "Sales"]), (4, ["4", "Support"])]
    assert rejected_rules(parsed) == {2: ["field_count"], 3: ["field_count"]}
    messages = {r.line: r.errors[0].message for r in parsed.rejected}
    assert messages[2] == "expected 2 fields, found 1"
    assert messages[3] == "expected 2 fields, found 3"
    assert {r.line: r.raw for r in parsed.rejected} == {2: "2", 3: "3,Legal,extra"}


def test_a_quoted_line_with_the_wrong_number_of_fields_is_a_field_count_error() -> None:
    parsed = parse_block(b'1,"Sales, EMEA",x\n', 1, DEPARTMENTS, at_file_start=True)

    assert rejected_rules(parsed) == {1: ["field_count"]}
    assert len(parsed) == 0


def test_broken_quoting_rejects_that_line_and_not_the_ones_after_it() -> None:
    # Given an unterminated quote on line 2: a field may not run on to the next line
    data = b'1,Sales\n2,"Legal\n3,Support\n4,"Train"ing",x\n'

    parsed = parse_block(data, 1, DEPARTMENTS, at_file_start=True)

    assert rows_of(parsed) == [(1, ["1", "Sales"]), (3, ["3", "Support"])]
    assert rejected_rules(parsed) == {2: ["quoting"], 4: ["quoting"]}


def test_a_quote_left_open_does_not_run_on_into_the_next_line_with_quotes() -> None:
    # Given a line whose quoted field is never closed, then lines whose quotes close it
    data = b'1,"Sales\n2,Legal"\n3,"Support"\n'

    parsed = parse_block(data, 1, DEPARTMENTS, at_file_start=True)

    # Then only the open line is rejected; a quote inside an unquoted field is a character
    assert rows_of(parsed) == [(2, ["2", 'Legal"']), (3, ["3", "Support"])]
    assert rejected_rules(parsed) == {1: ["quoting"]}


def test_blank_lines_are_rejected_with_their_line_number() -> None:
    data = b"1,Sales\n\n   \n2,Legal\n"

    parsed = parse_block(data, 1, DEPARTMENTS, at_file_start=True)

    assert rows_of(parsed) == [(1, ["1", "Sales"]), (4, ["2", "Legal"])]
    assert rejected_rules(parsed) == {2: ["blank_line"], 3: ["blank_line"]}


def test_a_line_that_is_not_utf8_is_rejected_and_its_neighbours_are_kept() -> None:
    # Given a block with one Latin-1 line among UTF-8 ones
    data = "1,Café\n".encode() + b"2,Caf\xe9\n" + "3,Zoë\n".encode()

    # When it is parsed
    parsed = parse_block(data, 1, DEPARTMENTS, at_file_start=True)

    # Then the bad line is an encoding rejection whose raw text shows the byte
    assert rows_of(parsed) == [(1, ["1", "Café"]), (3, ["3", "Zoë"])]
    assert rejected_rules(parsed) == {2: ["encoding"]}
    assert parsed.rejected[0].raw == "2,Caf\\xe9"


def test_an_empty_block_has_no_rows() -> None:
    parsed = parse_block(b"", 1, DEPARTMENTS, at_file_start=True)

    assert len(parsed) == 0
    assert parsed.rejected == []


@pytest.mark.parametrize(
    "head",
    [
        b"\xff\xfe1\x00,\x00S\x00",
        b"\xfe\xff\x001\x00,",
        "1,Sales\n".encode("utf-16-le") * 50,
        bytes(range(32)) * 50,
        bytes(range(128, 256)) * 20,
        b"1,Ann" + b"\x00" * 200 + b"\n",
    ],
    ids=["utf16-le", "utf16-be", "utf16-without-bom", "control-bytes", "not-utf8", "nul-padded"],
)
def test_a_file_that_is_not_text_is_refused_as_a_whole(head: bytes) -> None:
    with pytest.raises(NotText):
        check_is_text(head)


@pytest.mark.parametrize(
    "head",
    [
        b"1,Sales\n" * 500 + b"2,Le\x01gal\n",
        # Three short lines, two of them with a control character: still a text file.
        b"1,Ann\x07,2021-07-27T16:02:08Z,1,1\n2,Bob\x1b[31m,2021-07-27T16:02:08Z,1,1\n"
        b"3,Person,2021-07-27T16:02:08Z,1,1\n",
        b"1,Ann\x00Smith\n2,Bob\n",
        "1,José Müller\n2,Zoë\n".encode("latin-1"),
        b"",
    ],
    ids=["stray-control-byte", "small-file-two-controls", "one-nul", "latin-1-lines", "empty"],
)
def test_text_with_a_few_bad_bytes_is_still_text(head: bytes) -> None:
    check_is_text(head)


def test_the_share_of_bad_bytes_decides_and_only_the_head_is_read() -> None:
    # A third of the bytes is the limit: at it a file is text, one byte more is not.
    text = b"a,b\n" * 300
    check_is_text(text + b"\x01" * (len(text) // 2))
    with pytest.raises(NotText):
        check_is_text(text + b"\x01" * (len(text) // 2 + 1))
    # Bytes past the first 64 KiB are not looked at.
    check_is_text(b"1,Sales\n" * 9000 + b"\x00" * 100_000)


# --- with quoted newlines allowed -----------------------------------------------------------


def parse_quoted(data: bytes, first_line: int = 1) -> RawRows:
    return parse_block(data, first_line, DEPARTMENTS, first_line == 1, quoted_newlines=True)


def test_a_quoted_field_spanning_lines_is_one_row_numbered_by_its_first_line() -> None:
    # Given a block from line 10 whose second record's quoted field spans three lines
    data = b'1,Sales\n2,"Legal\nand\nCompliance"\n3,Support\n'

    # When it is parsed with quoted newlines allowed
    parsed = parse_quoted(data, 10)

    # Then that record is one row on its first line, and the next row keeps counting lines
    assert rows_of(parsed) == [
        (10, ["1", "Sales"]),
        (11, ["2", "Legal\nand\nCompliance"]),
        (14, ["3", "Support"]),
    ]
    assert parsed.raw.to_pylist()[1] == '2,"Legal\nand\nCompliance"'
    assert parsed.rejected == []


def test_a_crlf_inside_quotes_is_kept_and_the_record_end_is_not() -> None:
    parsed = parse_quoted(b'1,"Legal\r\nTeam"\r\n2,Sales\r\n')

    assert rows_of(parsed) == [(1, ["1", "Legal\r\nTeam"]), (3, ["2", "Sales"])]


def test_doubled_quotes_in_a_field_spanning_lines_are_one_quote() -> None:
    parsed = parse_quoted(b'1,"The ""Legal""\nteam, ""EMEA"""\n2,B\n')

    assert rows_of(parsed) == [(1, ["1", 'The "Legal"\nteam, "EMEA"']), (3, ["2", "B"])]


def test_an_unterminated_quote_at_the_end_is_rejected_on_its_first_line() -> None:
    # Given a quote opened on line 2 and never closed
    data = b'1,Sales\n2,"Legal\n3,Support\n4,Train'

    parsed = parse_quoted(data)

    # Then the rest of the block is one record, rejected for its quoting on line 2
    assert rows_of(parsed) == [(1, ["1", "Sales"])]
    assert rejected_rules(parsed) == {2: ["quoting"]}
    assert parsed.rejected[0].raw == '2,"Legal\n3,Support\n4,Train'


def test_a_record_with_a_bad_line_is_rejected_whole_on_its_first_line() -> None:
    data = b'1,Sales\n2,"Caf\xe9\nLegal"\n3,Support\n4,"Too\nmany",fields\n'

    parsed = parse_quoted(data, 5)

    assert rows_of(parsed) == [(5, ["1", "Sales"]), (8, ["3", "Support"])]
    assert rejected_rules(parsed) == {6: ["encoding"], 9: ["field_count"]}


def test_the_same_lines_without_the_option_are_rejected_one_by_one() -> None:
    data = b'1,Sales\n2,"Legal\nand Compliance"\n3,Support\n'

    parsed = parse_block(data, 1, DEPARTMENTS, at_file_start=True)

    assert rows_of(parsed) == [(1, ["1", "Sales"]), (4, ["3", "Support"])]
    assert rejected_rules(parsed) == {2: ["quoting"], 3: ["field_count"]}
