"""The rules a row can break: what each says to people, and how broken rules are stored.

A rejection is stored as its raw text plus a compact list of ``column:rule[:detail]`` entries
(``detail`` only where the raw text cannot tell it, like the length of a line that was cut).
Messages are rendered from that list and the raw text when a rejection is read, by the same
templates that wrote them when it was made, so storage grows with the input, not with the
prose about it.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

import orjson

from common.model.catalog import Column, ColumnType, TableSpec
from common.model.rows import FieldError

ROW = "row"  # the "column" of rules about a whole line
# A duplicate found earlier in the same file or batch, rather than in the table.
IN_INPUT = "input"
# Up to 18 significant digits keeps every id inside a signed 64-bit integer on every database.
MAX_ID_DIGITS = 18


@dataclass(frozen=True)
class Context:
    """What a message may mention: the table, the column, its value in the row, a detail."""

    spec: TableSpec
    column: str
    value: str
    detail: str


def _column(c: Context) -> Column | None:
    return next((col for col in c.spec.columns if col.name == c.column), None)


def _references(c: Context) -> str:
    col = _column(c)
    return col.references or "" if col else ""


def _duplicate(c: Context) -> str:
    if c.detail == IN_INPUT:
        return f"id {c.value} appears earlier in the same input"
    return f"id {c.value} already exists in {c.spec.name}"


def _duplicate_value(c: Context) -> str:
    """A unique column's value seen before: earlier in the same input (``detail`` is
    :data:`IN_INPUT`), or already in the table (no detail)."""
    if c.detail == IN_INPUT:
        return f"{c.column} {c.value!r} appears earlier in the same input"
    return f"{c.column} {c.value!r} already exists in {c.spec.name}"


def _or_none(c: Context) -> str:
    """How an optional column says it has no value, for the messages of its type's rules."""
    col = _column(c)
    if col is None or col.required:
        return ""
    if not col.null_marker.strip():
        return ", or empty for no value"
    return f", or {col.null_marker.strip()} for no value"


def _too_long(c: Context) -> str:
    col = _column(c)
    return f"{c.column} must be at most {col.max_length if col else '?'} characters"


def _out_of_range(c: Context) -> str:
    col = _column(c)
    if col is not None and col.type is ColumnType.INTEGER:
        return f"{c.column} must be between {-(2**63)} and {2**63 - 1}{_or_none(c)}"
    return f"{c.column} must have at most {MAX_ID_DIGITS} digits"


def _too_many_digits(c: Context) -> str:
    col = _column(c)
    if col is None:
        return f"{c.column} has too many digits"
    whole = col.precision - col.scale
    if col.scale == 0:
        return f"{c.column} must be a whole number of at most {whole} digits{_or_none(c)}"
    return (
        f"{c.column} must have at most {whole} digits before the decimal point and "
        f"{col.scale} after{_or_none(c)}"
    )


def _wrong_type(c: Context) -> str:
    col = _column(c)
    null = "" if col is None or col.required else ", or null"
    if col is not None and col.type is ColumnType.BOOLEAN:
        return f"{c.column} must be true, false or a string{null}"
    return f"{c.column} must be a string or a number{null}"


MESSAGES: dict[str, Callable[[Context], str]] = {
    "required": lambda c: f"{c.column} is required",
    "not_integer": lambda c: f"{c.column} must be a whole number{_or_none(c)}",
    "not_positive": lambda c: f"{c.column} must be greater than zero",
    "out_of_range": _out_of_range,
    "not_decimal": lambda c: f"{c.column} must be a decimal number, like 12.50{_or_none(c)}",
    "too_many_digits": _too_many_digits,
    "not_float": lambda c: f"{c.column} must be a finite number, like 2.5 or 1e-3{_or_none(c)}",
    "not_boolean": lambda c: f"{c.column} must be true, false, 1 or 0{_or_none(c)}",
    "too_long": _too_long,
    "invalid_character": lambda c: f"{c.column} contains a control character",
    "not_date": lambda c: f"{c.column} must be an ISO 8601 date, like 2021-07-27{_or_none(c)}",
    "invalid_date": lambda c: f"{c.column} is not a real date in the years 1 to 9999",
    "missing_timezone": lambda c: f"{c.column} needs a time zone (Z or an offset such as +02:00)",
    "not_iso8601": lambda c: (
        f"{c.column} must be an ISO 8601 date and time, like 2021-07-27T16:02:08Z{_or_none(c)}"
    ),
    "invalid_datetime": lambda c: (
        f"{c.column} is not a real date and time in the years 1 to 9999 (UTC)"
    ),
    "field_count": lambda c: f"expected {len(c.spec.columns)} fields, found {c.detail}",
    "quoting": lambda c: f"broken quoting: {c.value}",
    "blank_line": lambda c: "the line is empty",
    "encoding": lambda c: "the line is not UTF-8 text",
    "line_too_long": lambda c: f"the line is {c.detail} bytes",
    "duplicate_id": _duplicate,
    "duplicate_value": _duplicate_value,
    "unknown_reference": lambda c: f"{_references(c)} has no id {c.value}",
    "unknown_column": lambda c: f"{c.column!r} is not a column of {c.spec.name}",
    "wrong_type": _wrong_type,
}


def broken(
    spec: TableSpec, column: str, rule: str, *, value: object = "", detail: object = ""
) -> FieldError:
    """The :class:`FieldError` for ``rule`` broken in ``column``, with its message."""
    return _broken(spec, column, rule, str(value), "" if detail is None else str(detail))


# Junk repeats itself: a million bad lines break the same few rules the same few ways.
@functools.lru_cache(maxsize=4096)
def _broken(spec: TableSpec, column: str, rule: str, value: str, detail: str) -> FieldError:
    return FieldError(column, rule, MESSAGES[rule](Context(spec, column, value, detail)), detail)


def encode(errors: Iterable[FieldError]) -> str:
    """``column:rule[:detail]`` entries joined by ``;`` (column names percent-encoded)."""
    return ";".join(_code(e) for e in errors)


@functools.lru_cache(maxsize=4096)
def _code(error: FieldError) -> str:
    column = error.column if error.column.isidentifier() else quote(error.column, safe="_")
    return f"{column}:{error.rule}" + (f":{error.detail}" if error.detail else "")


def decode(spec: TableSpec, raw: str, stored: str, *, from_json: bool) -> tuple[FieldError, ...]:
    """The errors of a stored rejection with their messages, told again from ``raw`` (a CSV
    line, or a JSON object when ``from_json``)."""
    values = _json_values(raw) if from_json else _csv_values(spec, raw)
    ids = {c.name for c in spec.columns if c.type is ColumnType.ID}
    out: list[FieldError] = []
    for entry in stored.split(";") if stored else ():
        column, rule, *rest = entry.split(":", 2)
        column = unquote(column)
        detail = rest[0] if rest else ""
        if rule == "quoting":
            value = _quoting_problem(spec, raw)
        else:
            value = values.get(column, "").strip()
            value = _as_id(value) if column in ids else value
        message = MESSAGES[rule](Context(spec, column, value, detail))
        out.append(FieldError(column, rule, message, detail))
    return tuple(out)


def _fields(spec: TableSpec, raw: str) -> list[str]:
    """The fields of a CSV line of ``spec``'s table (``csv.Error`` if its quoting is broken)."""
    if '"' not in raw:
        return raw.split(spec.delimiter)
    return next(csv.reader([raw], delimiter=spec.delimiter), [])


def _csv_values(spec: TableSpec, raw: str) -> dict[str, str]:
    try:
        fields = _fields(spec, raw)
    except csv.Error:
        return {}
    return {col.name: f for col, f in zip(spec.columns, fields, strict=False)}


def _json_values(raw: str) -> dict[str, str]:
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in row.items()} if isinstance(row, dict) else {}


def _as_id(value: str) -> str:
    """An id as the messages spell it (``+05`` is id 5); other text as it is."""
    try:
        return str(int(value))
    except ValueError:
        return value


def _quoting_problem(spec: TableSpec, raw: str) -> str:
    try:
        rows = list(csv.reader([raw], strict=True, delimiter=spec.delimiter))
    except csv.Error as exc:
        return str(exc)
    return "the line does not hold exactly one record" if len(rows) != 1 else "unbalanced quotes"


def looks_like_header(spec: TableSpec, raw: str) -> bool:
    """Whether a rejected first line names the table's columns, as a header row does (case,
    spaces, underscores and quotes aside)."""
    try:
        fields = _fields(spec, raw)
    except csv.Error:
        return False

    def plain(name: str) -> str:
        return name.strip().strip('"').strip().lower().replace(" ", "_")

    return [plain(f) for f in fields] == [plain(c) for c in spec.column_names]


def rule_counts(rejections: Sequence[Iterable[FieldError]]) -> dict[str, int]:
    """How many rejections broke each rule."""
    counts: dict[str, int] = {}
    for errors in rejections:
        for rule in {e.rule for e in errors}:
            counts[rule] = counts.get(rule, 0) + 1
    return dict(sorted(counts.items()))
