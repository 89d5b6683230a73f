"""Read a catalog file (TOML) into a :class:`Catalog`, with every mistake named at once.

```toml
[tables.departments]
columns = [
  { name = "id", type = "id" },
  { name = "department", type = "text", max_length = 255 },
]
```
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from common.model.catalog import (
    MAX_DECIMAL_PRECISION,
    Catalog,
    Column,
    ColumnType,
    TableSpec,
    Timezone,
)

SHIPPED = "catalog.toml"  # in the ``common`` package
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Columns the service adds beside a table's own in its staging table and rejections.
_RESERVED_COLUMNS = frozenset({"line", "raw", "job_seq", "row"})
# The service's own tables, and the prefix of its staging tables.
_RESERVED_TABLES = frozenset(
    {
        "ingest_jobs",
        "job_parts",
        "job_rejections",
        "batches",
        "batch_rejections",
        "queue_messages",
        "leases",
        "dead_letter_claims",
        "table_gates",
        "hire_counts",
        "hire_count_changes",
        "alembic_version",
    }
)
_MAX_TEXT = 4000  # the longest NVARCHAR SQL Server keeps in the row
_COLUMN_KEYS = frozenset(
    {
        "name",
        "type",
        "references",
        "required",
        "null_marker",
        "unique",
        "max_length",
        "precision",
        "scale",
        "timezone",
    }
)
_TABLE_KEYS = frozenset({"columns", "primary_key", "delimiter", "skip_leading_rows"})


class CatalogError(ValueError):
    """A catalog file that cannot be used; ``problems`` holds one sentence per mistake."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def shipped_catalog() -> Catalog:
    """The catalog shipped with the service: departments, jobs and hired_employees."""
    text = resources.files("common").joinpath(SHIPPED).read_text(encoding="utf-8")
    return parse_catalog(text, source="shipped catalog.toml")


def load_catalog(path: Path | None) -> Catalog:
    """The catalog in ``path``, or the shipped one when ``path`` is None."""
    if path is None:
        return shipped_catalog()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(str(path), [f"cannot be read ({exc.strerror or exc})"]) from None
    return parse_catalog(text, source=str(path))


def parse_catalog(text: str, *, source: str) -> Catalog:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(source, [f"is not valid TOML ({exc})"]) from None
    problems: list[str] = []
    tables = document.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise CatalogError(source, ["declares no table: add a [tables.<name>] section"])
    for key in document:
        if key != "tables":
            problems.append(f"unknown top-level key {key!r} (only [tables.<name>] is read)")
    specs = [_table(name, body, problems) for name, body in tables.items()]
    known = {s.name: s for s in specs if s is not None}
    for spec in known.values():
        _check_references(spec, known, problems)
    ordered = _parents_first(list(known.values()), problems)
    if problems:
        raise CatalogError(source, problems)
    return Catalog(tuple(ordered), source=source)


def _table(name: str, body: Any, problems: list[str]) -> TableSpec | None:
    where = f"table {name!r}"
    if not _NAME.match(name):
        problems.append(f"{where}: a table name is lower-case letters, digits and _ (at most 63)")
        return None
    if name in _RESERVED_TABLES or name.startswith("stage_"):
        problems.append(f"{where}: the name is taken by the service's own tables")
        return None
    if not isinstance(body, dict):
        problems.append(f"{where}: expected a table with a 'columns' list")
        return None
    for key in body.keys() - _TABLE_KEYS:
        problems.append(f"{where}: unknown key {key!r} (expected {', '.join(sorted(_TABLE_KEYS))})")
    raw_columns = body.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        problems.append(f"{where}: 'columns' must be a non-empty list of {{ name, type }}")
        return None
    columns = [_column(where, raw, problems) for raw in raw_columns]
    if any(c is None for c in columns):
        return None
    cols = tuple(c for c in columns if c is not None)
    names = [c.name for c in cols]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{where}: column {dup!r} is declared twice")
    key = body.get("primary_key", names[0])
    delimiter = body.get("delimiter", ",")
    skip = body.get("skip_leading_rows", 0)
    if key not in names:
        problems.append(f"{where}: primary_key {key!r} is not one of its columns")
        return None
    key_column = cols[names.index(key)]
    if key_column.type is not ColumnType.ID:
        problems.append(f"{where}: the primary key {key!r} must have type 'id'")
    if not key_column.required:
        problems.append(f"{where}: the primary key {key!r} cannot be optional")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
        problems.append(f"{where}: delimiter must be one character other than a quote or newline")
    if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
        problems.append(f"{where}: skip_leading_rows must be a whole number, 0 or more")
    return TableSpec(name, cols, primary_key=key, delimiter=str(delimiter), skip_leading_rows=skip)


def _column(where: str, raw: Any, problems: list[str]) -> Column | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        problems.append(f'{where}: each column needs a name, like {{ name = "id", type = "id" }}')
        return None
    name: str = raw["name"]
    at = f"{where}, column {name!r}"
    bad = len(problems)
    if not _NAME.match(name):
        problems.append(f"{at}: a column name is lower-case letters, digits and _ (at most 63)")
    elif name in _RESERVED_COLUMNS:
        problems.append(f"{at}: the name is used by the service itself; choose another")
    for key in sorted(raw.keys() - _COLUMN_KEYS):
        problems.append(f"{at}: unknown key {key!r}")
    try:
        kind = ColumnType(str(raw.get("type")))
    except ValueError:
        choices = ", ".join(t.value for t in ColumnType)
        problems.append(f"{at}: unknown type {raw.get('type')!r}; expected one of {choices}")
        return None
    fields: dict[str, Any] = {}
    _flag(raw, "required", at, problems, fields)
    _flag(raw, "unique", at, problems, fields)
    if "null_marker" in raw:
        if not isinstance(raw["null_marker"], str):
            problems.append(f"{at}: null_marker must be a string")
        elif raw.get("required", True):
            problems.append(f"{at}: null_marker is only for optional columns (required = false)")
        else:
            fields["null_marker"] = raw["null_marker"]
    if kind is ColumnType.TEXT:
        _number(raw, "max_length", 1, _MAX_TEXT, at, problems, fields)
    elif "max_length" in raw:
        problems.append(f"{at}: max_length is only for text columns")
    if kind is ColumnType.DECIMAL:
        _number(raw, "precision", 1, MAX_DECIMAL_PRECISION, at, problems, fields)
        _number(raw, "scale", 0, fields.get("precision", 18), at, problems, fields)
    elif "precision" in raw or "scale" in raw:
        problems.append(f"{at}: precision and scale are only for decimal columns")
    if kind is ColumnType.TIMESTAMP and "timezone" in raw:
        try:
            fields["timezone"] = Timezone(raw["timezone"])
        except ValueError:
            problems.append(f"{at}: timezone must be 'required' or 'assume_utc'")
    elif "timezone" in raw:
        problems.append(f"{at}: timezone is only for timestamp columns")
    if "references" in raw:
        if not isinstance(raw["references"], str):
            problems.append(f"{at}: references must name a table")
        elif kind is not ColumnType.ID:
            problems.append(f"{at}: a column that references a table must have type 'id'")
        else:
            fields["references"] = raw["references"]
    if len(problems) > bad:
        return None
    return Column(name, kind, **fields)


def _flag(raw: dict[str, Any], key: str, at: str, problems: list[str], out: dict[str, Any]) -> None:
    if key in raw:
        if isinstance(raw[key], bool):
            out[key] = raw[key]
        else:
            problems.append(f"{at}: {key} must be true or false")


def _number(
    raw: dict[str, Any],
    key: str,
    low: int,
    high: int,
    at: str,
    problems: list[str],
    out: dict[str, Any],
) -> None:
    if key not in raw:
        return
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{at}: {key} must be a whole number from {low} to {high}")
    else:
        out[key] = value


def _check_references(spec: TableSpec, known: dict[str, TableSpec], problems: list[str]) -> None:
    for col in spec.columns:
        if col.references is None:
            continue
        at = f"table {spec.name!r}, column {col.name!r}"
        if col.references not in known:
            problems.append(f"{at}: references {col.references!r}, which is not declared")


def _parents_first(specs: list[TableSpec], problems: list[str]) -> list[TableSpec]:
    """The tables in declaration order, each after the tables it references; a cycle (a table
    that references itself included) cannot be loaded in any order and is a mistake."""
    ordered: list[TableSpec] = []
    placed: set[str] = set()
    pending = list(specs)
    while pending:
        ready = [
            s for s in pending if all(p in placed or p not in _names(specs) for p in s.parents)
        ]
        if not ready:
            cycle = " → ".join(s.name for s in pending)
            problems.append(f"references form a cycle among {cycle}: no table can be loaded first")
            return ordered
        first = ready[0]
        ordered.append(first)
        placed.add(first.name)
        pending.remove(first)
    return ordered


def _names(specs: list[TableSpec]) -> set[str]:
    return {s.name for s in specs}
