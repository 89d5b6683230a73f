"""The data rules that need no database, applied to whole columns at once.

Every rule yields a boolean mask per column (the rules of each type are in
:mod:`common.pipeline.column_rules`); only the rows that fail get Python objects built for them,
so a clean block costs a handful of Arrow kernel calls per column whatever its size.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from common.model.catalog import Column, ColumnType, TableSpec
from common.model.rows import FieldError, RawRows, Rejection, ValidRows
from common.model.rules import IN_INPUT, broken
from common.pipeline.column_rules import RULES, ColumnCheck


def validate(spec: TableSpec, rows: RawRows, line_breaks: bool = False) -> ValidRows:
    """Apply the rules that need no database; keep good rows typed, explain the bad ones.

    ``line_breaks`` lets text hold LF and CRLF, which only a quoted field spanning lines can
    (``allow_quoted_newlines``).
    """
    size = len(rows)
    checked: dict[str, ColumnCheck] = {}
    typed: dict[str, pa.Array] = {}
    texts: dict[str, pa.Array] = {}  # of unique columns, to name a duplicate as it was written
    for column in spec.columns:
        text = pc.utf8_trim_whitespace(rows.fields[column.name])
        col = _presence(column, text, size)
        typed[column.name] = col.typed(RULES[column.type](col, column, text, line_breaks))
        checked[column.name] = col
        if column.unique and column.type is not ColumnType.ID:
            texts[column.name] = text

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
    written = {name: text.filter(keep) for name, text in texts.items()}
    table, duplicates = _first_of_each_value(table, spec, written)
    rejected.extend(duplicates)
    rejected.sort(key=lambda r: r.line)
    return ValidRows(table=table, rejected=rejected)


def _presence(column: Column, text: pa.Array, size: int) -> ColumnCheck:
    """The column's check, with the rows that have no value: rejected (``required``) in a
    required column, null in an optional one. A JSON null (an Arrow null) has no value."""
    if column.required:
        col = ColumnCheck(column.name, size)
        empty = pc.equal(pc.utf8_length(text), 0)
        col.check(pc.fill_null(empty, True) if text.null_count else empty, "required")
        return col
    absent = pc.equal(text, pa.scalar(column.null_marker.strip()))
    return ColumnCheck(column.name, size, pc.fill_null(absent, True) if text.null_count else absent)


def _explain(
    spec: TableSpec, rows: RawRows, checked: Mapping[str, ColumnCheck], failed: pa.Array
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


def _first_of_each_value(
    table: pa.Table, spec: TableSpec, written: Mapping[str, pa.Array]
) -> tuple[pa.Table, list[Rejection]]:
    """Keep the first row of each id, and of each value of a unique column, in the block;
    later ones are duplicates (``duplicate_id``, ``duplicate_value``, naming the value as
    ``written``). Rows without a value are no duplicates of one another."""
    if table.num_rows < 2:
        return table, []
    key = spec.key.name
    checks = [(key, "duplicate_id")] + [
        (c.name, "duplicate_value") for c in spec.columns if c.unique and c.name != key
    ]
    later: dict[int, list[FieldError]] = {}
    for name, rule in checks:
        values = table.column(name)
        if pc.count_distinct(values).as_py() == table.num_rows - values.null_count:
            continue
        first = table.select([name, "line"]).group_by(name).aggregate([("line", "min")]).column(1)
        is_later = pc.invert(
            pc.or_(pc.is_in(table.column("line"), value_set=first), pc.is_null(values))
        )
        spelled = written.get(name, values)
        for i in pc.indices_nonzero(is_later).to_pylist():
            value = spelled[i].as_py()
            later.setdefault(i, []).append(broken(spec, name, rule, value=value, detail=IN_INPUT))
    if not later:
        return table, []
    rows = sorted(later)
    lines = pc.take(table.column("line"), rows).to_pylist()
    raws = pc.take(table.column("raw"), rows).to_pylist()
    rejected = [
        Rejection(line, raw, tuple(later[i]))
        for i, line, raw in zip(rows, lines, raws, strict=True)
    ]
    keep = pc.invert(pc.is_in(table.column("line"), value_set=pa.array(lines, pa.int64())))
    return table.filter(keep), rejected
