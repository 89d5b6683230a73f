"""Split a block of CSV bytes into rows of text fields, one record per row.

By default each physical line is one record, so that a line number in an error is the line an
editor shows and a file can be cut into parts at any newline; a quoted field that would run past
the end of its line is a quoting error on that line. With ``allow_quoted_newlines`` a quoted
field may span lines: the lines of a record are joined (see :mod:`common.pipeline.records`) and
the record carries its first line's number. Records without a double quote are split on the
table's delimiter by Arrow kernels; the few with quotes go through the standard ``csv`` module
with the same delimiter.
"""

from __future__ import annotations

import csv
import re

import pyarrow as pa
import pyarrow.compute as pc

from common.errors import NotText
from common.model.catalog import TableSpec
from common.model.rows import FieldError, RawRows, Rejection
from common.model.rules import ROW, broken
from common.pipeline.records import join_records

BOM = "\ufeff"
_SNIFF_BYTES = 64 * 1024
# A file is binary rather than text with a few bad lines when more than a third of its first
# bytes are NUL, other control bytes or not UTF-8 (the share Perl's -B file test uses). Fewer
# such bytes are rejected with their lines (invalid_character, encoding); the rest still loads.
_NOT_TEXT_SHARE = 1 / 3
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13))
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def check_is_text(head: bytes) -> None:
    """Raise :class:`NotText` if the start of a file shows it is not UTF-8 text at all."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NotText("the file is UTF-16 encoded; convert it to UTF-8 and upload it again")
    sample = head[:_SNIFF_BYTES]
    if not sample:
        return
    strange = len(sample) - len(sample.translate(None, _CONTROL_BYTES)) + _undecodable(sample)
    if strange > len(sample) * _NOT_TEXT_SHARE:
        raise NotText(
            f"the file is not text ({strange} of its first {len(sample)} bytes are control "
            "bytes or not UTF-8); upload a UTF-8 CSV file"
        )


def _undecodable(data: bytes) -> int:
    """How many bytes of ``data`` are not part of a valid UTF-8 sequence."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return len(_ESCAPED_BYTE.findall(data.decode("utf-8", errors="surrogateescape")))
    return 0


def _reject(spec: TableSpec, line: int, raw: str, rule: str, **about: object) -> Rejection:
    return Rejection(line, raw, (broken(spec, ROW, rule, **about),))


def _decode_lines(data: bytes) -> tuple[list[str], list[int]]:
    """Decode line by line; return the lines and the indexes of lines that are not UTF-8."""
    lines: list[str] = []
    bad: list[int] = []
    for i, raw in enumerate(data.split(b"\n")):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("utf-8", errors="backslashreplace"))
            bad.append(i)
    return lines, bad


def split_lines(data: bytes, at_file_start: bool) -> tuple[pa.Array, list[int]]:
    """The lines of ``data`` (without LF/CRLF) and the indexes of lines that are not UTF-8."""
    lines, bad = _lines_with_cr(data, at_file_start)
    return pc.utf8_rtrim(lines, characters="\r"), bad


def _lines_with_cr(data: bytes, at_file_start: bool) -> tuple[pa.Array, list[int]]:
    """The lines of ``data`` without their LF, and the indexes of lines that are not UTF-8."""
    bad: list[int] = []
    try:
        text = data.decode("utf-8")
        lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    except UnicodeDecodeError:
        decoded, bad = _decode_lines(data)
        lines = pa.array(decoded, pa.large_string())
    if data.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)
    if at_file_start and len(lines) and lines[0].as_py().startswith(BOM):
        lines = pa.concat_arrays(
            [pa.array([lines[0].as_py()[1:]], pa.large_string()), lines.slice(1)]
        )
    return lines, bad


def _split_quoted(spec: TableSpec, line_no: int, line: str) -> list[str] | Rejection:
    """Fields of a line with quotes, or its rejection."""
    try:
        rows = list(csv.reader([line], strict=True, delimiter=spec.delimiter))
    except csv.Error as exc:
        return _reject(spec, line_no, line, "quoting", value=exc)
    if len(rows) != 1:
        return _reject(
            spec, line_no, line, "quoting", value="the line does not hold exactly one record"
        )
    if len(rows[0]) != len(spec.columns):
        return _reject(spec, line_no, line, "field_count", detail=len(rows[0]))
    return rows[0]


def _split_all_quoted(
    spec: TableSpec, numbers: list[int], texts: list[str]
) -> list[list[str] | Rejection]:
    """Fields of each line with quotes, or its rejection; one pass of ``csv`` for them all
    unless one of them is broken."""
    try:
        rows = list(csv.reader(texts, strict=True, delimiter=spec.delimiter))
    except csv.Error:
        rows = []
    # A line holds at most one record (a newline outside quotes is an error), and one that
    # leaves a quoted field open runs on into the next: one row per line means none did.
    if len(rows) != len(texts):
        return [_split_quoted(spec, n, t) for n, t in zip(numbers, texts, strict=True)]
    width = len(spec.columns)
    return [
        row if len(row) == width else _reject(spec, n, t, "field_count", detail=len(row))
        for n, t, row in zip(numbers, texts, rows, strict=True)
    ]


def parse_block(
    data: bytes,
    first_line: int,
    spec: TableSpec,
    at_file_start: bool,
    quoted_newlines: bool = False,
) -> RawRows:
    """Parse ``data`` (whole records) whose first line is line number ``first_line`` of the
    file; with ``quoted_newlines`` a quoted field may span lines."""
    if not data:  # no line at all (an empty file), not one empty line
        return RawRows.empty(spec.column_names)
    lines, undecodable = _lines_with_cr(data, at_file_start)
    numbers = pa.array(range(first_line, first_line + len(lines)), pa.int64())
    if quoted_newlines and b'"' in data:
        lines, numbers, undecodable = join_records(lines, numbers, undecodable)
    lines = pc.utf8_rtrim(lines, characters="\r")
    width = len(spec.columns)
    count = len(lines)
    rejected: list[Rejection] = []

    bad = pa.array([False] * count) if count else pa.array([], pa.bool_())
    if undecodable:
        mask = [False] * count
        for i in undecodable:
            mask[i] = True
            rejected.append(_reject(spec, numbers[i].as_py(), lines[i].as_py(), "encoding"))
        bad = pa.array(mask)

    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(lines)), 0)
    if spec.delimiter.isspace():  # a line of tabs holds empty fields, not nothing
        blank = pc.and_not(blank, pc.match_substring(lines, spec.delimiter))
    quoted = pc.match_substring(lines, '"')
    fields = pc.split_pattern(lines, spec.delimiter)
    wrong_width = pc.not_equal(pc.list_value_length(fields), width)

    # Junk makes many rejections alike: each distinct error is built once per block.
    blank_now = pc.and_not(blank, bad)
    is_blank = (broken(spec, ROW, "blank_line"),)
    for number, text in zip(
        numbers.filter(blank_now).to_pylist(), lines.filter(blank_now).to_pylist(), strict=True
    ):
        rejected.append(Rejection(number, text, is_blank))
    bad = pc.or_(bad, blank)
    short_or_long = pc.and_not(pc.and_not(wrong_width, quoted), bad)
    miscounted: dict[int, tuple[FieldError]] = {}
    for number, text, found in zip(
        numbers.filter(short_or_long).to_pylist(),
        lines.filter(short_or_long).to_pylist(),
        pc.list_value_length(fields).filter(short_or_long).to_pylist(),
        strict=True,
    ):
        errors = miscounted.get(found)
        if errors is None:
            errors = miscounted[found] = (broken(spec, ROW, "field_count", detail=found),)
        rejected.append(Rejection(number, text, errors))
    bad = pc.or_(bad, short_or_long)

    plain = pc.invert(pc.or_(bad, quoted))
    plain_fields = fields.filter(plain)
    columns = {name: pc.list_element(plain_fields, i) for i, name in enumerate(spec.column_names)}
    result = RawRows(
        line=numbers.filter(plain),
        raw=pc.cast(lines.filter(plain), pa.string()),
        fields={k: pc.cast(v, pa.string()) for k, v in columns.items()},
        rejected=rejected,
    )
    quoted_ok = pc.and_not(quoted, bad)
    if pc.any(quoted_ok).as_py():
        _add_quoted_lines(result, lines.filter(quoted_ok), numbers.filter(quoted_ok), spec)
    return result


def _add_quoted_lines(rows: RawRows, lines: pa.Array, numbers: pa.Array, spec: TableSpec) -> None:
    """Split ``lines`` (holding quotes; ``numbers`` are their line numbers) into ``rows``."""
    extra_lines: list[int] = []
    extra_raw: list[str] = []
    extra_fields: list[list[str]] = []
    line_numbers, texts = numbers.to_pylist(), lines.to_pylist()
    for number, text, parsed in zip(
        line_numbers, texts, _split_all_quoted(spec, line_numbers, texts), strict=True
    ):
        if isinstance(parsed, Rejection):
            rows.rejected.append(parsed)
            continue
        extra_lines.append(number)
        extra_raw.append(text)
        extra_fields.append(parsed)
    if not extra_lines:
        return
    order_table = pa.table(
        {
            "line": pa.concat_arrays([rows.line, pa.array(extra_lines, pa.int64())]),
            "raw": pa.concat_arrays([rows.raw, pa.array(extra_raw, pa.string())]),
            **{
                name: pa.concat_arrays(
                    [rows.fields[name], pa.array([f[c] for f in extra_fields], pa.string())]
                )
                for c, name in enumerate(spec.column_names)
            },
        }
    ).sort_by("line")
    rows.line = order_table.column("line").combine_chunks()
    rows.raw = order_table.column("raw").combine_chunks()
    rows.fields = {name: order_table.column(name).combine_chunks() for name in spec.column_names}


def skip_leading(rows: RawRows, count: int) -> RawRows:
    """``rows`` without the file's first ``count`` lines (``skip_leading_rows``): neither read
    nor rejected; the other lines keep their numbers."""
    if count <= 0:
        return rows
    keep = pc.greater(rows.line, count)
    return RawRows(
        line=rows.line.filter(keep),
        raw=rows.raw.filter(keep),
        fields={name: values.filter(keep) for name, values in rows.fields.items()},
        rejected=[r for r in rows.rejected if r.line > count],
    )
