"""The data dictionary: the three tables, their CSV column order and the kind of each column."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.errors import UnknownTable


class Kind(StrEnum):
    """How a column's text is validated and stored."""

    ID = "id"
    TEXT = "text"
    DATETIME = "datetime"
    REF = "ref"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    references: str | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def parents(self) -> tuple[str, ...]:
        """Tables whose ids this table's rows must reference."""
        return tuple(c.references for c in self.columns if c.references)


MAX_TEXT_LENGTH = 255

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("departments", (Column("id", Kind.ID), Column("department", Kind.TEXT))),
        TableSpec("jobs", (Column("id", Kind.ID), Column("job", Kind.TEXT))),
        TableSpec(
            "hired_employees",
            (
                Column("id", Kind.ID),
                Column("name", Kind.TEXT),
                Column("datetime", Kind.DATETIME),
                Column("department_id", Kind.REF, references="departments"),
                Column("job_id", Kind.REF, references="jobs"),
            ),
        ),
    )
}

# Parents before children: the order multi-file uploads are queued in and restores run in.
LOAD_ORDER: tuple[str, ...] = ("departments", "jobs", "hired_employees")


def table_spec(name: str) -> TableSpec:
    """The spec of ``name``, or :class:`UnknownTable` naming the tables that exist."""
    try:
        return TABLES[name]
    except KeyError:
        raise UnknownTable(
            f"unknown table {name!r}; expected one of: {', '.join(LOAD_ORDER)}"
        ) from None


def children_of(name: str) -> tuple[str, ...]:
    """Tables with rows that reference ``name``."""
    return tuple(t.name for t in TABLES.values() if name in t.parents)
