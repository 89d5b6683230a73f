"""The rules of each column type, as masks over a whole column of trimmed text.

Each type's function records the rules its rows break on a :class:`ColumnCheck` and returns the
column with its final Arrow type (see :class:`common.model.rows.ValidRows`). A clean column
costs a few kernel calls; Python sees one value at a time only in a block holding a value that
is well formed but impossible (2021-02-30, an integer beyond 64 bits), to tell which.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from common.model.catalog import Column, ColumnType, Timezone
from common.model.rules import MAX_ID_DIGITS

_INTEGER = r"^[+-]?[0-9]+$"
_POSITIVE = r"^\+?0*[1-9][0-9]*$"
_IN_RANGE = rf"^\+?0*[1-9][0-9]{{0,{MAX_ID_DIGITS - 1}}}$"
_DECIMAL = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
# Nan and infinity are no numbers a database column of another kind could take back.
_FLOAT = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_ISO_WITH_ZONE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
)
_ISO_WITHOUT_ZONE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?$"
_TRUE = pa.array(["true", "1"])
_BOOLEAN = pa.array(["true", "false", "1", "0"])
# Every control character: C0, DEL, C1; the other one lets LF and CRLF through.
_CONTROL = r"\p{Cc}"
_CONTROL_BUT_LINE_BREAK = r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x{9f}]|\r([^\n]|$)"
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
STORED_TIMESTAMP = pa.timestamp("us")
_EARLIEST = pa.scalar(datetime.min.replace(tzinfo=UTC), UTC_TIMESTAMP)
_LATEST = pa.scalar(datetime.max.replace(tzinfo=UTC), UTC_TIMESTAMP)
_FIRST_DAY = pa.scalar(date.min, pa.date32())


class ColumnCheck:
    """Failures found so far in one column: a mask per rule, in the order rules were checked.

    ``absent`` marks the rows without a value (an optional column's null marker): no rule
    applies to them and their typed value is null.
    """

    def __init__(self, name: str, size: int, absent: pa.Array | None = None) -> None:
        self.name = name
        self.failed = pa.array([False] * size, pa.bool_())
        self.absent = absent
        self.settled = self.failed if absent is None else absent
        self.checks: list[tuple[pa.Array, str]] = []

    def check(self, failing: pa.Array, rule: str) -> None:
        """Record ``rule`` for rows failing it that broke no earlier rule of this column."""
        new = pc.fill_null(pc.and_not(failing, self.settled), False)
        if pc.any(new).as_py():
            self.checks.append((new, rule))
            self.failed = pc.or_(self.failed, new)
            self.settled = pc.or_(self.settled, new)

    def candidates(self, text: pa.Array, placeholder: str) -> pa.Array:
        """``text`` with ``placeholder`` (a valid value) for rows already settled, to cast."""
        return pc.if_else(self.settled, pa.scalar(placeholder), text)

    def typed(self, values: pa.Array) -> pa.Array:
        """``values`` with nulls where the row has no value."""
        if self.absent is None:
            return values
        return pc.if_else(self.absent, pa.scalar(None, values.type), values)


def _cast(
    col: ColumnCheck,
    text: pa.Array,
    to: pa.DataType,
    parse_one: Callable[[str], object],
    rule: str,
) -> pa.Array:
    """``text`` (well formed) cast to ``to``; values the cast refuses fail ``rule``."""
    try:
        return pc.cast(text, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values: list[object] = []
        for value in text.to_pylist():
            try:
                values.append(parse_one(value))
            except (ValueError, ArithmeticError):  # OverflowError and InvalidOperation too
                values.append(None)
        parsed = pa.array(values, to)
        col.check(pc.is_null(parsed), rule)
        return parsed


def _id(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    col.check(pc.invert(pc.match_substring_regex(text, _INTEGER)), "not_integer")
    col.check(pc.invert(pc.match_substring_regex(text, _POSITIVE)), "not_positive")
    col.check(pc.invert(pc.match_substring_regex(text, _IN_RANGE)), "out_of_range")
    safe = pc.utf8_ltrim(col.candidates(text, "0"), characters="+")
    return pc.cast(safe, pa.int64())


def _signed_64(value: str) -> int:
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise OverflowError(value)
    return number


def _integer(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    col.check(pc.invert(pc.match_substring_regex(text, _INTEGER)), "not_integer")
    safe = pc.utf8_ltrim(col.candidates(text, "0"), characters="+")
    return _cast(col, safe, pa.int64(), _signed_64, "out_of_range")


def _decimal(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    whole, scale = column.precision - column.scale, column.scale
    col.check(pc.invert(pc.match_substring_regex(text, _DECIMAL)), "not_decimal")
    # Extra fraction digits are refused rather than rounded: a load never changes a value.
    # Leading zeros and trailing fraction zeros hold no digit of the value.
    fits = rf"^[+-]?0*[0-9]{{0,{whole}}}(\.[0-9]{{0,{scale}}}0*)?$"
    col.check(pc.invert(pc.match_substring_regex(text, fits)), "too_many_digits")
    to = pa.decimal128(column.precision, column.scale)
    return _cast(col, col.candidates(text, "0"), to, Decimal, "too_many_digits")


def _float(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    col.check(pc.invert(pc.match_substring_regex(text, _FLOAT)), "not_float")
    parsed = pc.cast(col.candidates(text, "0"), pa.float64())
    col.check(pc.invert(pc.is_finite(parsed)), "not_float")  # beyond 1.8e308
    return parsed


def _boolean(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    lower = pc.utf8_lower(text)
    col.check(pc.invert(pc.is_in(lower, value_set=_BOOLEAN)), "not_boolean")
    return pc.is_in(lower, value_set=_TRUE)


def _text(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    col.check(pc.greater(pc.utf8_length(text), column.max_length), "too_long")
    col.check(
        pc.match_substring_regex(text, _CONTROL_BUT_LINE_BREAK if line_breaks else _CONTROL),
        "invalid_character",
    )
    return text


def _date(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    col.check(pc.invert(pc.match_substring_regex(text, _DATE)), "not_date")
    candidates = col.candidates(text, "1970-01-01")
    parsed = _cast(col, candidates, pa.date32(), date.fromisoformat, "invalid_date")
    col.check(pc.less(parsed, _FIRST_DAY), "invalid_date")  # Arrow reads year 0
    return parsed


def _timestamp(col: ColumnCheck, column: Column, text: pa.Array, line_breaks: bool) -> pa.Array:
    no_zone = pc.match_substring_regex(text, _ISO_WITHOUT_ZONE)
    if column.timezone is Timezone.ASSUME_UTC:
        text = pc.if_else(no_zone, pc.binary_join_element_wise(text, "Z", ""), text)
    well_formed = pc.match_substring_regex(text, _ISO_WITH_ZONE)
    if column.timezone is Timezone.REQUIRED:
        col.check(pc.and_not(no_zone, well_formed), "missing_timezone")
    col.check(pc.invert(well_formed), "not_iso8601")
    candidates = col.candidates(text, "1970-01-01T00:00:00Z")
    parsed = _cast(col, candidates, UTC_TIMESTAMP, _utc, "invalid_datetime")
    if parsed.null_count:
        parsed = pc.fill_null(parsed, pa.scalar(0, UTC_TIMESTAMP))
    # Arrow reads year 0, and an offset can carry 9999-12-31 into year 10000: no database can.
    outside = pc.or_(pc.less(parsed, _EARLIEST), pc.greater(parsed, _LATEST))
    col.check(outside, "invalid_datetime")
    parsed = pc.if_else(outside, pa.scalar(0, UTC_TIMESTAMP), parsed)
    return pc.cast(parsed, STORED_TIMESTAMP)


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError(value)
    return parsed.astimezone(UTC)


Rule = Callable[[ColumnCheck, Column, pa.Array, bool], pa.Array]
RULES: dict[ColumnType, Rule] = {
    ColumnType.ID: _id,
    ColumnType.INTEGER: _integer,
    ColumnType.DECIMAL: _decimal,
    ColumnType.FLOAT: _float,
    ColumnType.BOOLEAN: _boolean,
    ColumnType.TEXT: _text,
    ColumnType.DATE: _date,
    ColumnType.TIMESTAMP: _timestamp,
}
