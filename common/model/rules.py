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

from common.model.catalog import MAX_TEXT_LENGTH, TableSpec
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


def _references(c: Context) -> str:
    return next((col.references or "" for col in c.spec.columns if col.name == c.column), "")


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


MESSAGES: dict[str, Callable[[Context], str]] = {
    "required": lambda c: f"{c.column} is required",
    "not_integer": lambda c: f"{c.column} must be a whole number",
    "not_positive": lambda c: f"{c.column} must be greater than zero",
    "out_of_range": lambda c: f"{c.column} must have at most {MAX_ID_DIGITS} digits",
    "too_long": lambda c: f"{c.column} must be at most {MAX_TEXT_LENGTH} characters",
    "invalid_character": lambda c: f"{c.column} contains a control character",
    "missing_timezone": lambda c: f"{c.column} needs a time zone (Z or an offset such as +02:00)",
    "not_iso8601": lambda c: (
        f"{c.column} must be an ISO 8601 date and time, like 2021-07-27T16:02:08Z"
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
    "wrong_type": lambda c: f"{c.column} must be a string or a number",
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
    out: list[FieldError] = []
    for entry in stored.split(";") if stored else ():
        column, rule, *rest = entry.split(":", 2)
        column = unquote(column)
        detail = rest[0] if rest else ""
        value = _quoting_problem(raw) if rule == "quoting" else _as_id(values.get(column, ""))
        message = MESSAGES[rule](Context(spec, column, value, detail))
        out.append(FieldError(column, rule, message, detail))
    return tuple(out)


def _csv_values(spec: TableSpec, raw: str) -> dict[str, str]:
    try:
        fields = next(csv.reader([raw]), []) if '"' in raw else raw.split(",")
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
    text = value.strip()
    try:
        return str(int(text))
    except ValueError:
        return text


def _quoting_problem(raw: str) -> str:
    try:
        rows = list(csv.reader([raw], strict=True))
    except csv.Error as exc:
        return str(exc)
    return "the line does not hold exactly one record" if len(rows) != 1 else "unbalanced quotes"


def looks_like_header(spec: TableSpec, raw: str) -> bool:
    """Whether a rejected first line names the table's columns, as a header row does (case,
    spaces, underscores and quotes aside)."""
    try:
        fields = next(csv.reader([raw]), [])
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
