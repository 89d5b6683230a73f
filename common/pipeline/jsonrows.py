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
    index: list[int] = []
    raw: list[str] = []
    fields: dict[str, list[str]] = {name: [] for name in names}
    rejected: list[Rejection] = []
    for i, row in enumerate(rows):
        errors = [broken(spec, key, "unknown_column") for key in row if key not in names]
        texts: dict[str, str] = {}
        for name in names:
            text = _as_text(row.get(name))
            if text is None:
                errors.append(broken(spec, name, "wrong_type"))
            else:
                texts[name] = text
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
