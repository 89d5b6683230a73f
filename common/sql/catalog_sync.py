"""Bring the database's data tables to the catalog at start: create what is missing, apply what
only adds (a new table, a new optional column, a longer text, a new unique column), and refuse
to start on anything that would lose or reinterpret data (a dropped, retyped or re-keyed column),
naming it in one sentence. ``ingest catalog diff`` shows the same list without changing anything.

Tables in the database that the catalog does not declare are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Index, Table, inspect, text, types
from sqlalchemy.schema import CreateIndex, CreateTable

from common.model.catalog import Catalog, ColumnType, TableSpec
from common.sql.catalog_tables import catalog_tables
from common.sql.db import Database


class CatalogMismatch(RuntimeError):
    """The database holds a declared table in a shape the catalog cannot take over safely."""


@dataclass(frozen=True)
class Difference:
    """One way the database differs from the catalog; ``apply`` makes it match, when that only
    adds (None when it would lose or reinterpret data)."""

    sentence: str
    apply: Callable[[Connection], None] | None

    @property
    def additive(self) -> bool:
        return self.apply is not None


def _family(kind: types.TypeEngine[Any]) -> str:
    if isinstance(kind, types.Boolean):
        return "boolean"
    if isinstance(kind, types.Integer):
        return "integer"
    if isinstance(kind, types.Float):
        return "float"
    if isinstance(kind, types.Numeric):
        return "decimal"
    if isinstance(kind, types.DateTime):
        return "timestamp"
    if isinstance(kind, types.Date):
        return "date"
    if isinstance(kind, types.String):
        return "text"
    return type(kind).__name__.lower()


_FAMILY = {
    ColumnType.ID: "integer",
    ColumnType.INTEGER: "integer",
    ColumnType.DECIMAL: "decimal",
    ColumnType.FLOAT: "float",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.TEXT: "text",
    ColumnType.DATE: "date",
    ColumnType.TIMESTAMP: "timestamp",
}


def differences(conn: Connection, catalog: Catalog) -> list[Difference]:
    """How the database differs from ``catalog``, table by table, parents first."""
    tables = catalog_tables(catalog)
    present = set(inspect(conn).get_table_names())
    found: list[Difference] = []
    for spec in catalog.specs:
        data, staging = tables.data[spec.name], tables.staging[spec.name]
        if spec.name not in present:
            found.append(Difference(f"create table {spec.name}", _create(data)))
        else:
            found.extend(_column_differences(conn, spec, data))
        if staging.name not in present:
            found.append(Difference(f"create table {staging.name}", _create(staging)))
    return found


def _create(table: Table) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        if not (conn.dialect.name == "postgresql" and table.info.get("unlogged")):
            table.create(conn, checkfirst=True)
            return
        ddl = str(CreateTable(table).compile(conn))
        conn.execute(text(ddl.replace("CREATE TABLE", "CREATE UNLOGGED TABLE", 1)))
        for index in table.indexes:
            index.create(conn)

    return apply


def _column_differences(conn: Connection, spec: TableSpec, data: Table) -> list[Difference]:
    inspector = inspect(conn)
    reflected = {c["name"]: c for c in inspector.get_columns(spec.name)}
    key = inspector.get_pk_constraint(spec.name).get("constrained_columns") or []
    where = f"table {spec.name}"
    out: list[Difference] = []

    def refuse(sentence: str) -> None:
        out.append(Difference(f"{where}: {sentence}", None))

    if key != [spec.key.name]:
        refuse(f"its primary key is {key}, the catalog says {spec.key.name!r}")
    for name in sorted(reflected.keys() - set(spec.column_names)):
        refuse(f"column {name} is not in the catalog (dropped?)")
    for col in spec.columns:
        have = reflected.get(col.name)
        declared = data.c[col.name]
        if have is None and col.required:
            refuse(
                f"new column {col.name} is required, and rows already there have no value"
                " for it; declare it with required = false"
            )
        elif have is None:
            out.append(Difference(f"{where}: add column {col.name}", _add(spec, declared)))
        else:
            out.extend(_retyped(conn.dialect.name, where, spec, declared, have))
    indexes = {i["name"] for i in inspector.get_indexes(spec.name)}
    for index in data.indexes:
        if index.name not in indexes:
            out.append(Difference(f"{where}: add unique index {index.name}", _index(index)))
    return out


def _retyped(
    dialect: str, where: str, spec: TableSpec, declared: Column[Any], have: Any
) -> list[Difference]:
    """How a column present in the database differs from its declaration."""
    col = spec.column(declared.name)
    got = _family(have["type"])
    as_text = col.type is ColumnType.DECIMAL and dialect == "sqlite"
    if got != ("text" if as_text else _FAMILY[col.type]):
        return [
            Difference(f"{where}: column {col.name} is {got}, the catalog says {col.type}", None)
        ]
    out: list[Difference] = []
    if bool(have["nullable"]) == col.required and col is not spec.key:
        now = "optional" if have["nullable"] else "required"
        out.append(Difference(f"{where}: column {col.name} is {now} in the database", None))
    # SQLite keeps a declared length without enforcing it: there, the service's validation is
    # what holds text to its length, and a changed length changes nothing stored.
    length = None if dialect == "sqlite" else getattr(have["type"], "length", None)
    if col.type is ColumnType.TEXT and length is not None and length != col.max_length:
        change = f"{where}: text column {col.name} from {length} to {col.max_length} characters"
        out.append(
            Difference(change, _lengthen(spec, declared) if length < col.max_length else None)
        )
    if col.type is ColumnType.DECIMAL and not as_text:
        now_is = (getattr(have["type"], "precision", None), getattr(have["type"], "scale", None))
        if now_is != (col.precision, col.scale):
            change = f"{where}: column {col.name} is decimal{now_is}, the catalog says"
            out.append(Difference(f"{change} decimal({col.precision}, {col.scale})", None))
    return out


def _add(spec: TableSpec, column: Column[Any]) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        quote = conn.dialect.identifier_preparer.quote
        kind = column.type.compile(conn.dialect)
        for table in (spec.name, f"stage_{spec.name}"):
            conn.execute(text(f"ALTER TABLE {quote(table)} ADD {quote(column.name)} {kind} NULL"))

    return apply


def _lengthen(spec: TableSpec, column: Column[Any]) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        kind = column.type.compile(conn.dialect)
        null = "NULL" if column.nullable else "NOT NULL"
        quote = conn.dialect.identifier_preparer.quote
        name = quote(column.name)
        for table in (quote(spec.name), quote(f"stage_{spec.name}")):
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {name} TYPE {kind}"))
            else:
                conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {name} {kind} {null}"))

    return apply


def _index(index: Index) -> Callable[[Connection], None]:
    def apply(conn: Connection) -> None:
        conn.execute(CreateIndex(index))

    return apply


def sync_catalog(db: Database, catalog: Catalog) -> list[str]:
    """Apply the additive differences; raise :class:`CatalogMismatch` naming the others. The
    sentences of what was applied. Processes starting together may race to apply the same
    change: the loser finds it done when it looks again."""
    with db.engine.connect() as conn:
        found = differences(conn, catalog)
    refused = [d.sentence for d in found if not d.additive]
    if refused:
        raise CatalogMismatch(
            f"the database does not match the catalog ({catalog.source}): "
            + "; ".join(refused)
            + ". Change the catalog back, or change the table by hand (docs/operations.md,"
            + ' "Changing the catalog")'
        )
    applied: list[str] = []
    for difference in found:
        assert difference.apply is not None
        try:
            with db.engine.begin() as conn:
                difference.apply(conn)
        except Exception:
            with db.engine.connect() as conn:
                if any(d.sentence == difference.sentence for d in differences(conn, catalog)):
                    raise
        applied.append(difference.sentence)
    return applied
