"""The data rules that need no database, applied to whole columns at once.

Every rule yields a boolean mask per column; only the rows that fail get Python objects built
for them, so a clean block costs a handful of Arrow kernel calls whatever its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from common.model.catalog import MAX_TEXT_LENGTH, ColumnType, TableSpec
from common.model.rows import FieldError, RawRows, Rejection, ValidRows
from common.model.rules import IN_INPUT, MAX_ID_DIGITS, broken

_INTEGER = r"^[+-]?[0-9]+$"
_POSITIVE = r"^\+?0*[1-9][0-9]*$"
_IN_RANGE = rf"^\+?0*[1-9][0-9]{{0,{MAX_ID_DIGITS - 1}}}$"
_ISO_WITH_ZONE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
)
_ISO_WITHOUT_ZONE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"
# Every control character: C0, DEL, C1; the other one lets LF and CRLF through.
_CONTROL = r"\p{Cc}"
_CONTROL_BUT_LINE_BREAK = r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x{9f}]|\r([^\n]|$)"
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
STORED_TIMESTAMP = pa.timestamp("us")
_EARLIEST = pa.scalar(datetime.min.replace(tzinfo=UTC), UTC_TIMESTAMP)
_LATEST = pa.scalar(datetime.max.replace(tzinfo=UTC), UTC_TIMESTAMP)


class _Column:
    """Failures found so far in one column: a mask per rule, in the order rules were checked."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.failed = pa.array([False] * size, pa.bool_())
        self.checks: list[tuple[pa.Array, str]] = []

    def check(self, failing: pa.Array, rule: str) -> None:
        """Record ``rule`` for rows failing it that broke no earlier rule of this column."""
        new = pc.fill_null(pc.and_not(failing, self.failed), False)
        if pc.any(new).as_py():
            self.checks.append((new, rule))
            self.failed = pc.or_(self.failed, new)


def _id_column(col: _Column, text: pa.Array) -> pa.Array:
    col.check(pc.invert(pc.match_substring_regex(text, _INTEGER)), "not_integer")
    col.check(pc.invert(pc.match_substring_regex(text, _POSITIVE)), "not_positive")
    col.check(pc.invert(pc.match_substring_regex(text, _IN_RANGE)), "out_of_range")
    safe = pc.if_else(col.failed, pa.scalar("0"), pc.utf8_ltrim(text, characters="+"))
    return pc.cast(safe, pa.int64())


def _text_column(col: _Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    col.check(pc.greater(pc.utf8_length(text), MAX_TEXT_LENGTH), "too_long")
    col.check(
        pc.match_substring_regex(text, _CONTROL_BUT_LINE_BREAK if line_breaks else _CONTROL),
        "invalid_character",
    )
    return text


def _datetime_column(col: _Column, text: pa.Array) -> pa.Array:
    well_formed = pc.match_substring_regex(text, _ISO_WITH_ZONE)
    no_zone = pc.match_substring_regex(text, _ISO_WITHOUT_ZONE)
    col.check(pc.and_not(no_zone, well_formed), "missing_timezone")
    col.check(pc.invert(well_formed), "not_iso8601")
    candidates = pc.if_else(col.failed, pa.scalar("1970-01-01T00:00:00Z"), text)
    try:
        parsed = pc.cast(candidates, UTC_TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = _parse_one_by_one(candidates)
        col.check(pc.is_null(parsed), "invalid_datetime")
        parsed = pc.fill_null(parsed, pa.scalar(0, UTC_TIMESTAMP))
    # Arrow reads year 0, and an offset can carry 9999-12-31 into year 10000: no database can.
    outside = pc.or_(pc.less(parsed, _EARLIEST), pc.greater(parsed, _LATEST))
    col.check(outside, "invalid_datetime")
    parsed = pc.if_else(outside, pa.scalar(0, UTC_TIMESTAMP), parsed)
    return pc.cast(parsed, STORED_TIMESTAMP)


def _parse_one_by_one(text: pa.Array) -> pa.Array:
    """Slow path for a block with an impossible date: one value at a time, null on failure."""
    out: list[datetime | None] = []
    for value in text.to_pylist():
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z"))
            out.append(parsed.astimezone(UTC) if parsed.tzinfo else None)
        except (ValueError, OverflowError):
            out.append(None)
    return pa.array(out, UTC_TIMESTAMP)


def validate(spec: TableSpec, rows: RawRows, line_breaks: bool = False) -> ValidRows:
    """Apply the rules that need no database; keep good rows typed, explain the bad ones.

    ``line_breaks`` lets text hold LF and CRLF, which only a quoted field spanning lines can
    (``allow_quoted_newlines``).
    """
    size = len(rows)
    checked: dict[str, _Column] = {}
    typed: dict[str, pa.Array] = {}
    for column in spec.columns:
        text = pc.utf8_trim_whitespace(rows.fields[column.name])
        col = _Column(column.name, size)
        col.check(pc.equal(pc.utf8_length(text), 0), "required")
        if column.type is ColumnType.ID:
            typed[column.name] = _id_column(col, text)
        elif column.type is ColumnType.TEXT:
            typed[column.name] = _text_column(col, text, line_breaks)
        else:
            typed[column.name] = _datetime_column(col, text)
        checked[column.name] = col

    failed = pa.array([False] * size, pa.bool_())
    for col in checked.values():
        failed = pc.or_(failed, col.failed)

    rejected = list(rows.rejected)
    if pc.any(failed).as_py():
        rejected.extend(_explain(spec, rows, checked, failed))
    keep = pc.invert(failed)
    table = pa.table(
        {"line": rows.line.filter(keep), "raw": rows.raw.filter(keep)}
        | {name: arr.filter(keep) for name, arr in typed.items()}
    )
    table, duplicates = _first_of_each_id(table, spec)
    rejected.extend(duplicates)
    rejected.sort(key=lambda r: r.line)
    return ValidRows(table=table, rejected=rejected)


def _explain(
    spec: TableSpec, rows: RawRows, checked: Mapping[str, _Column], failed: pa.Array
) -> list[Rejection]:
    indexes = pc.indices_nonzero(failed).to_pylist()
    errors: dict[int, list[FieldError]] = {i: [] for i in indexes}
    for col in checked.values():
        for mask, rule in col.checks:
            error = broken(spec, col.name, rule)
            for i in pc.indices_nonzero(mask).to_pylist():
                errors[i].append(error)
    line = rows.line.to_pylist()
    raw = rows.raw
    return [Rejection(line[i], raw[i].as_py(), tuple(errors[i])) for i in indexes]


def _first_of_each_id(table: pa.Table, spec: TableSpec) -> tuple[pa.Table, list[Rejection]]:
    """Keep the first row of each id in the block; later ones are duplicates."""
    if table.num_rows < 2:
        return table, []
    id_name = spec.key.name
    ids = table.column(id_name)
    if pc.count_distinct(ids).as_py() == table.num_rows:
        return table, []
    first = (
        table.select([id_name, "line"])
        .group_by(id_name)
        .aggregate([("line", "min")])
        .column("line_min")
    )
    is_first = pc.is_in(table.column("line"), value_set=first)
    dup = table.filter(pc.invert(is_first))
    rejected = [
        Rejection(
            line,
            raw,
            (broken(spec, id_name, "duplicate_id", value=ident, detail=IN_INPUT),),
        )
        for line, raw, ident in zip(
            dup.column("line").to_pylist(),
            dup.column("raw").to_pylist(),
            dup.column(id_name).to_pylist(),
            strict=True,
        )
    ]
    return table.filter(is_first), rejected
