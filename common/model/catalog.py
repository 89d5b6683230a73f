"""The data dictionary: the tables the service loads, their CSV column order and column types.

The tables are data, declared in a catalog file (see :mod:`common.model.catalog_file`); the
shipped one declares the challenge's departments, jobs and hired_employees. A process works
with one catalog, made current at start by :func:`activate`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum

from common.errors import UnknownTable


class ColumnType(StrEnum):
    """How a column's text is validated and stored."""

    ID = "id"  # a positive 64-bit integer: keys and references
    INTEGER = "integer"  # a signed 64-bit integer
    DECIMAL = "decimal"  # exact, with a precision and a scale
    FLOAT = "float"  # a 64-bit binary floating-point number
    BOOLEAN = "boolean"  # true/false/1/0, any case
    TEXT = "text"
    DATE = "date"  # ISO 8601 calendar date
    TIMESTAMP = "timestamp"  # ISO 8601 date and time, kept as UTC


class Timezone(StrEnum):
    """What a timestamp without an offset means."""

    REQUIRED = "required"  # it is rejected (missing_timezone)
    ASSUME_UTC = "assume_utc"  # it is UTC


MAX_TEXT_LENGTH = 255
MAX_DECIMAL_PRECISION = 38


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    references: str | None = None
    required: bool = True
    # The field that means "no value" in an optional column (the empty field by default).
    null_marker: str = ""
    unique: bool = False
    max_length: int = MAX_TEXT_LENGTH
    precision: int = 18
    scale: int = 0
    timezone: Timezone = Timezone.REQUIRED


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    primary_key: str = ""  # the first column when empty
    delimiter: str = ","
    skip_leading_rows: int = 0

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def key(self) -> Column:
        """The primary key column."""
        name = self.primary_key or self.columns[0].name
        return next(c for c in self.columns if c.name == name)

    @property
    def parents(self) -> tuple[str, ...]:
        """Tables whose ids this table's rows must reference."""
        return tuple(dict.fromkeys(c.references for c in self.columns if c.references))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Catalog:
    """The declared tables, parents before children (the order multi-file uploads are queued
    in, staged loads publish in and restores run in)."""

    specs: tuple[TableSpec, ...]
    source: str = "shipped"
    _by_name: dict[str, TableSpec] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {s.name: s for s in self.specs})

    @property
    def tables(self) -> dict[str, TableSpec]:
        return self._by_name

    @property
    def load_order(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def table(self, name: str) -> TableSpec:
        """The spec of ``name``, or :class:`UnknownTable` naming the tables that exist."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownTable(
                f"unknown table {name!r}; expected one of: {', '.join(self.load_order)}"
            ) from None

    def children_of(self, name: str) -> tuple[str, ...]:
        """Tables with rows that reference ``name``."""
        return tuple(s.name for s in self.specs if name in s.parents)

    @functools.cached_property
    def has_reports(self) -> bool:
        """Whether the challenge's three tables are declared with the columns the two reports
        and their summary of hires read."""
        return _declares_challenge_tables(self)


def _declares_challenge_tables(catalog: Catalog) -> bool:
    wanted = {
        "departments": {"id": ColumnType.ID, "department": ColumnType.TEXT},
        "jobs": {"id": ColumnType.ID, "job": ColumnType.TEXT},
        "hired_employees": {
            "id": ColumnType.ID,
            "datetime": ColumnType.TIMESTAMP,
            "department_id": ColumnType.ID,
            "job_id": ColumnType.ID,
        },
    }
    for table, columns in wanted.items():
        spec = catalog.tables.get(table)
        if spec is None or spec.key.name != "id":
            return False
        types = {c.name: c for c in spec.columns}
        for name, kind in columns.items():
            col = types.get(name)
            if col is None or col.type is not kind or not col.required:
                return False
    hired = catalog.tables["hired_employees"]
    return (
        hired.column("department_id").references == "departments"
        and hired.column("job_id").references == "jobs"
    )


_active: Catalog | None = None


def activate(catalog: Catalog) -> None:
    """Make ``catalog`` the one this process loads into (at start, from ``CATALOG_FILE``)."""
    global _active
    _active = catalog


def current() -> Catalog:
    """The catalog this process works with: the activated one, else the shipped one."""
    global _active
    if _active is None:
        from common.model.catalog_file import shipped_catalog

        _active = shipped_catalog()
    return _active


def table_spec(name: str) -> TableSpec:
    """The spec of ``name`` in the current catalog (:class:`UnknownTable` if none)."""
    return current().table(name)


def children_of(name: str) -> tuple[str, ...]:
    return current().children_of(name)


def load_order() -> tuple[str, ...]:
    return current().load_order
