"""The shapes rows take between parsing, validation and the database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from common.model.catalog import Column, ColumnType


@dataclass(frozen=True)
class FieldError:
    """One broken rule: the column (or ``"row"``), the rule's name, a sentence for people and,
    where the row's text cannot tell it again, a short detail (see :mod:`common.model.rules`)."""

    column: str
    rule: str
    message: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"column": self.column, "rule": self.rule, "message": self.message}


@dataclass(frozen=True)
class Rejection:
    """A row that was not inserted: its line (uploads) or index (batches), raw text and errors."""

    line: int
    raw: str
    errors: tuple[FieldError, ...]


@dataclass
class RawRows:
    """Rows split into text fields, not yet validated.

    ``line`` holds each row's line number (uploads) or index (batches), ``raw`` its original
    text, and ``fields`` one string column per table column. Rows that could not even be split
    are already in ``rejected``.
    """

    line: pa.Array
    raw: pa.Array
    fields: dict[str, pa.Array]
    rejected: list[Rejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line)

    @classmethod
    def empty(cls, column_names: tuple[str, ...]) -> RawRows:
        return cls(
            line=pa.array([], pa.int64()),
            raw=pa.array([], pa.string()),
            fields={name: pa.array([], pa.string()) for name in column_names},
        )


_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.ID: pa.int64(),
    ColumnType.INTEGER: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOLEAN: pa.bool_(),
    ColumnType.TEXT: pa.string(),
    ColumnType.DATE: pa.date32(),
    ColumnType.TIMESTAMP: pa.timestamp("us"),
}


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type of ``column`` in :class:`ValidRows`."""
    if column.type is ColumnType.DECIMAL:
        return pa.decimal128(column.precision, column.scale)
    return _ARROW_TYPES[column.type]


@dataclass
class ValidRows:
    """Rows that passed every rule that can be checked without the database.

    ``table`` has the columns ``line``, ``raw`` and the table's columns with their final Arrow
    types, ordered by ``line``:

    ========== ===================================================
    id         int64 (positive)
    integer    int64
    decimal    decimal128(precision, scale), the exact value
    float      float64 (finite)
    boolean    bool
    text       string, trimmed
    date       date32
    timestamp  timestamp("us") without a zone, holding UTC
    ========== ===================================================

    An optional column's rows without a value (its null marker, or null in JSON) are null.
    """

    table: pa.Table
    rejected: list[Rejection]

    @property
    def valid_count(self) -> int:
        return int(self.table.num_rows)


def json_raw(row: Any) -> str:
    try:
        return orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the standard library spells it
        return json.dumps(row, default=str)
