"""Write validated rows: bulk-load them into a staging table, then let one set-based statement
find the rows the database must refuse (duplicate ids, unknown references) and another insert
the rest. Everything runs inside the caller's transaction.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Table,
    Unicode,
    and_,
    delete,
    exists,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.schema import CreateTable

from common.odbc_bulk import load_staging
from common.rows import FieldError, Rejection, ValidRows
from common.schema import Timestamp, data_tables
from common.tables import Kind, TableSpec

ON_CONFLICT_REJECT = "reject"
ON_CONFLICT_UPDATE = "update"


@dataclass(frozen=True)
class LoadResult:
    inserted: int
    updated: int
    rejected: list[Rejection]


# One MetaData per dialect: the staging table's name and options differ between them.
_stage_metadata: dict[str, MetaData] = {}


def staging_table(spec: TableSpec, dialect: str) -> Table:
    """The per-connection temporary table that batches of ``spec`` rows are loaded into."""
    metadata = _stage_metadata.setdefault(dialect, MetaData())
    name = f"#stage_{spec.name}" if dialect == "mssql" else f"stage_{spec.name}"
    if name in metadata.tables:
        return metadata.tables[name]
    columns: list[Column[Any]] = [Column("line", BigInteger, nullable=False)]
    for col in spec.columns:
        if col.kind is Kind.TEXT:
            columns.append(Column(col.name, Unicode(255)))
        elif col.kind is Kind.DATETIME:
            columns.append(Column(col.name, Timestamp))
        else:
            columns.append(Column(col.name, BigInteger))
    options: dict[str, Any] = {}
    if dialect == "postgresql":
        options["postgresql_on_commit"] = "DELETE ROWS"
    prefixes = [] if dialect == "mssql" else ["TEMPORARY"]
    return Table(name, metadata, *columns, prefixes=prefixes, **options)


def _ensure_stage(conn: Connection, stage: Table) -> None:
    ready: set[str] = conn.info.setdefault("staging_tables", set())
    if stage.name in ready:
        return
    if conn.dialect.name == "mssql":
        conn.exec_driver_sql(
            f"IF OBJECT_ID('tempdb..{stage.name}') IS NULL "
            + str(CreateTable(stage).compile(dialect=conn.dialect))
        )
    else:
        conn.execute(CreateTable(stage, if_not_exists=True))
    ready.add(stage.name)


def _copy_postgresql(conn: Connection, stage: Table, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    columns = ", ".join(table.column_names)
    driver = conn.connection.driver_connection
    assert driver is not None
    with (
        driver.cursor() as cur,
        cur.copy(f"COPY {stage.name} ({columns}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(buffer.getbuffer())


def _insert_sqlite(conn: Connection, stage: Table, table: pa.Table) -> None:
    columns = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
        columns.append(col.to_pylist())
    placeholders = ", ".join("?" for _ in columns)
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.executemany(
        f"INSERT INTO {stage.name} ({', '.join(table.column_names)}) VALUES ({placeholders})",
        zip(*columns, strict=True),
    )


def _fill_stage(conn: Connection, stage: Table, table: pa.Table) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        _copy_postgresql(conn, stage, table)
    elif dialect == "sqlite":
        conn.execute(delete(stage))
        _insert_sqlite(conn, stage, table)
    else:
        load_staging(conn.connection.driver_connection, stage.name, table)


def load_rows(
    conn: Connection, spec: TableSpec, rows: ValidRows, on_conflict: str = ON_CONFLICT_REJECT
) -> LoadResult:
    """Insert ``rows.table`` into ``spec``'s table; return counts and the rows refused."""
    if rows.table.num_rows == 0:
        return LoadResult(0, 0, [])
    stage = staging_table(spec, conn.dialect.name)
    _ensure_stage(conn, stage)
    _fill_stage(conn, stage, rows.table.drop_columns(["raw"]))
    target = data_tables[spec.name]
    id_col = spec.columns[0].name

    parent_checks = [
        (
            col.name,
            col.references,
            exists().where(data_tables[col.references].c.id == stage.c[col.name]),
        )
        for col in spec.columns
        if col.references
    ]
    exists_in_target = exists().where(target.c[id_col] == stage.c[id_col])
    reject_duplicates = on_conflict != ON_CONFLICT_UPDATE
    duplicate = exists_in_target if reject_duplicates else literal(False)
    problems = [~check for _, _, check in parent_checks]
    if reject_duplicates:
        problems.append(exists_in_target)
    refused = (
        conn.execute(
            select(
                stage.c.line,
                stage.c[id_col],
                *[stage.c[name] for name, _, _ in parent_checks],
                duplicate.label("duplicate"),
                *[(~check).label(f"missing_{name}") for name, _, check in parent_checks],
            )
            .where(or_(*problems))
            .order_by(stage.c.line)
        ).all()
        if problems
        else []
    )
    all_parents_exist = and_(literal(True), *[check for _, _, check in parent_checks])
    data_columns = list(spec.column_names)
    updated = 0
    if on_conflict == ON_CONFLICT_UPDATE:
        updated = conn.execute(
            update(target)
            .where(target.c[id_col] == stage.c[id_col])
            .where(all_parents_exist)
            .values({c: stage.c[c] for c in data_columns if c != id_col})
        ).rowcount
    inserted = conn.execute(
        insert(target).from_select(
            data_columns,
            select(*[stage.c[c] for c in data_columns])
            .where(~exists_in_target)
            .where(all_parents_exist),
        )
    ).rowcount
    if conn.dialect.name == "sqlite":
        conn.execute(delete(stage))
    return LoadResult(inserted, updated, _refusals(rows, spec, refused, parent_checks))


def _refusals(
    rows: ValidRows,
    spec: TableSpec,
    refused: Sequence[Any],
    parent_checks: list[tuple[str, str, Any]],
) -> list[Rejection]:
    if not refused:
        return []
    lines = pa.array([r.line for r in refused], pa.int64())
    raw_by_line = dict(
        zip(
            rows.table.column("line")
            .filter(pc.is_in(rows.table.column("line"), lines))
            .to_pylist(),
            rows.table.column("raw").filter(pc.is_in(rows.table.column("line"), lines)).to_pylist(),
            strict=True,
        )
    )
    id_col = spec.columns[0].name
    out: list[Rejection] = []
    for r in refused:
        m = r._mapping
        errors: list[FieldError] = []
        if m["duplicate"]:
            errors.append(
                FieldError(id_col, "duplicate_id", f"id {m[id_col]} already exists in {spec.name}")
            )
        for name, parent, _ in parent_checks:
            if m[f"missing_{name}"]:
                errors.append(
                    FieldError(name, "unknown_reference", f"{parent} has no id {m[name]}")
                )
        out.append(Rejection(m["line"], raw_by_line[m["line"]], tuple(errors)))
    return out
