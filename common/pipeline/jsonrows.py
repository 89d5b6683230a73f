"""JSON row objects as the text fields a CSV line gives, so one validator serves both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from common.model.catalog import TableSpec
from common.model.rows import RawRows, Rejection, json_raw
from common.model.rules import broken


def _as_text(value: Any) -> str | None:
    """The CSV spelling of a JSON value, or None when no CSV field could hold it."""
    if value is None:
        return ""
    if isinstance(value, bool | dict | list):
        return None
    if isinstance(value, int | float | str):
        return str(value)
    return None


def rows_from_json(spec: TableSpec, rows: Sequence[dict[str, Any]]) -> RawRows:
    """Rows of a batch, indexed from 0, as :class:`RawRows`."""
    names = spec.column_names
    known = frozenset(names)
    index: list[int] = []
    raw: list[str] = []
    columns: list[list[str | None]] = [[] for _ in names]  # no None once checked
    rejected: list[Rejection] = []
    for i, row in enumerate(rows):
        # The common case first, a value at a time: a string is its own text, a number (not a
        # bool, whose type is not int) its decimal spelling.
        texts: list[str | None] = [
            value
            if (kind := type(value := row.get(name))) is str
            else (str(value) if kind is int or kind is float else _as_text(value))
            for name in names
        ]
        if None in texts or not known.issuperset(row):
            errors = [broken(spec, key, "unknown_column") for key in row if key not in known]
            errors += [
                broken(spec, name, "wrong_type")
                for name, text in zip(names, texts, strict=True)
                if text is None
            ]
            rejected.append(Rejection(i, json_raw(row), tuple(errors)))
            continue
        index.append(i)
        raw.append(json_raw(row))
        for column, text in zip(columns, texts, strict=True):
            column.append(text)
    return RawRows(
        line=pa.array(index, pa.int64()),
        raw=pa.array(raw, pa.string()),
        fields={
            name: pa.array(values, pa.string()) for name, values in zip(names, columns, strict=True)
        },
        rejected=rejected,
    )
