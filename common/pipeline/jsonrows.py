"""JSON row objects as the text fields a CSV line gives, so one validator serves both.

A value becomes the text a CSV field would hold: a string as it is, a number in its decimal
spelling (a float in a decimal column without an exponent; a string keeps a decimal exact
where a JSON number may already have been rounded to a float), true and false in a boolean
column as ``true`` and ``false``. ``null`` or a missing key is no value: null in an optional
column, an empty field (``required``) in a required one. Objects, arrays and booleans outside
a boolean column are ``wrong_type``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pyarrow as pa

from common.model.catalog import Column, ColumnType, TableSpec
from common.model.rows import RawRows, Rejection, json_raw
from common.model.rules import broken


class _WrongType(Exception):
    """No CSV field of the column could hold the value."""


def _as_text(column: Column, value: Any) -> str | None:
    """The CSV spelling of a JSON value, or None for no value."""
    if value is None:
        return "" if column.required else None
    if isinstance(value, bool):
        if column.type is ColumnType.BOOLEAN:
            return "true" if value else "false"
        raise _WrongType
    if isinstance(value, float) and column.type is ColumnType.DECIMAL:
        return format(Decimal(repr(value)), "f")
    if isinstance(value, int | float | str):
        return str(value)
    raise _WrongType


def rows_from_json(spec: TableSpec, rows: Sequence[dict[str, Any]]) -> RawRows:
    """Rows of a batch, indexed from 0, as :class:`RawRows`."""
    names = spec.column_names
    index: list[int] = []
    raw: list[str] = []
    fields: dict[str, list[str | None]] = {name: [] for name in names}
    rejected: list[Rejection] = []
    for i, row in enumerate(rows):
        errors = [broken(spec, key, "unknown_column") for key in row if key not in names]
        texts: dict[str, str | None] = {}
        for column in spec.columns:
            try:
                texts[column.name] = _as_text(column, row.get(column.name))
            except _WrongType:
                errors.append(broken(spec, column.name, "wrong_type"))
        if errors:
            rejected.append(Rejection(i, json_raw(row), tuple(errors)))
            continue
        index.append(i)
        raw.append(json_raw(row))
        for name in names:
            fields[name].append(texts[name])
    return RawRows(
        line=pa.array(index, pa.int64()),
        raw=pa.array(raw, pa.string()),
        fields={name: pa.array(values, pa.string()) for name, values in fields.items()},
        rejected=rejected,
    )
