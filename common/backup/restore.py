"""Check a backup file, then replace tables with its rows in one transaction.

Before anything is touched, every file is read once: its size and SHA-256 must match its
record and its AVRO schema must be the table's (at a schema version this code reads). The
restore then deletes the tables' rows and bulk-inserts the backups' rows, parents first, in one
transaction that also re-checks the hash and the row count and that no row is left pointing at
an id that is gone; any failure rolls everything back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import fastavro
import pyarrow as pa
import structlog
from sqlalchemy import Connection, exists, func, select

from common.backup.avroschema import check_file_schema
from common.backup.errors import BackupInvalid, RestoreConflict
from common.backup.records import BackupCatalog, BackupRecord
from common.backup.streams import ChunkSource, buffered
from common.errors import IngestError
from common.model.catalog import ColumnType, TableSpec, current, load_order, table_spec
from common.model.rows import arrow_type
from common.sql.bulk import bulk_insert
from common.sql.catalog_tables import data_table, key_column
from common.sql.db import Database
from common.stores import hire_counts

log = structlog.get_logger("ingest.backup")

BATCH_ROWS = 10_000


def _open(catalog: BackupCatalog, record: BackupRecord) -> tuple[ChunkSource, Any]:
    """The hashing source and a fastavro reader whose schema has been checked."""
    source, stream = buffered(catalog.read(record))
    try:
        avro = fastavro.reader(stream)
    except IngestError:
        raise
    except Exception as exc:
        raise BackupInvalid(
            f"backup {record.backup_id} is not a readable AVRO file ({type(exc).__name__}: {exc})"
        ) from None
    check_file_schema(table_spec(record.table), avro.metadata, record.schema_version)
    return source, avro


def _check_hash(record: BackupRecord, source: ChunkSource) -> None:
    if source.size != record.byte_size:
        raise BackupInvalid(
            f"backup {record.backup_id} has {source.size} bytes, its record says "
            f"{record.byte_size}: the file is truncated or was changed"
        )
    if source.sha256 != record.sha256:
        raise BackupInvalid(
            f"backup {record.backup_id} does not match its SHA-256 checksum: the file is corrupt"
        )


def verify(catalog: BackupCatalog, record: BackupRecord) -> None:
    """Refuse, with :class:`BackupInvalid`, a backup whose bytes or schema are not right."""
    whole = ChunkSource(catalog.read(record))
    whole.drain()
    _check_hash(record, whole)
    _open(catalog, record)  # reads the header only


def _batches(record: BackupRecord, avro: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    try:
        for row in avro:
            batch.append(row)
            if len(batch) >= size:
                yield batch
                batch = []
    except IngestError:
        raise
    except Exception as exc:
        raise BackupInvalid(
            f"backup {record.backup_id} cannot be decoded ({type(exc).__name__}: {exc})"
        ) from None
    if batch:
        yield batch


def _arrow(spec: TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for col in spec.columns:
        values = [r[col.name] for r in rows]
        if col.type is ColumnType.TIMESTAMP:
            # fastavro gives aware UTC datetimes; the database keeps naive UTC.
            aware = pa.array(values, pa.timestamp("us", tz="UTC"))
            arrays[col.name] = aware.cast(pa.timestamp("us"))
        else:
            arrays[col.name] = pa.array(values, arrow_type(col))
    return pa.table(arrays)


def _restore_table(
    conn: Connection, catalog: BackupCatalog, record: BackupRecord, batch_rows: int
) -> int:
    spec = table_spec(record.table)
    hire_counts.delete_counted(conn, spec.name)
    source, avro = _open(catalog, record)
    stored = 0
    for batch in _batches(record, avro, batch_rows):
        stored += bulk_insert(conn, spec.name, _arrow(spec, batch))
    source.drain()
    _check_hash(record, source)
    # Counted once the table is whole: one pass over it, rather than a change row per key
    # for every batch.
    hire_counts.add_from(conn, spec.name, data_table(spec.name))
    if stored != record.row_count:
        raise BackupInvalid(
            f"backup {record.backup_id} holds {stored} rows, its record says {record.row_count}"
        )
    return stored


def dangling_references(conn: Connection, tables: Sequence[str]) -> dict[str, int]:
    """Rows (``table.column`` → count) that reference a missing id, in tables touched by a
    restore of ``tables`` (the tables themselves and their children)."""
    found: dict[str, int] = {}
    for spec in current().specs:
        child = data_table(spec.name)
        for col in spec.columns:
            if not col.references or (spec.name not in tables and col.references not in tables):
                continue
            parent = data_table(col.references)
            value = child.c[col.name]
            missing = value.is_not(None) & ~exists().where(key_column(parent) == value)
            count = conn.execute(select(func.count()).select_from(child).where(missing)).scalar()
            if count:
                found[f"{spec.name}.{col.name}"] = int(count)
    return found


class Guard(Protocol):
    """Runs inside the restore's transaction: first, before any row is touched, and last,
    before it commits. Raising from either rolls the restore back."""

    def enter(self, conn: Connection) -> None: ...

    def leave(self, conn: Connection) -> None: ...


def restore(
    db: Database,
    catalog: BackupCatalog,
    records: Sequence[BackupRecord],
    *,
    batch_rows: int = BATCH_ROWS,
    guard: Guard | None = None,
) -> dict[str, int]:
    """Replace each record's table with its backup, all in one transaction; rows per table."""
    tables = [r.table for r in records]
    if len(set(tables)) != len(tables):
        raise BackupInvalid("a restore takes at most one backup per table")
    ordered = sorted(records, key=lambda r: load_order().index(r.table))
    for record in ordered:
        verify(catalog, record)
    restored: dict[str, int] = {}
    with db.write() as conn:
        if guard is not None:
            guard.enter(conn)
        for record in ordered:
            restored[record.table] = _restore_table(conn, catalog, record, batch_rows)
        dangling = dangling_references(conn, tables)
        if dangling:
            raise RestoreConflict(
                f"restoring {', '.join(tables)} would leave {_describe(dangling)}; nothing was "
                "changed. Restore a whole run (POST /backups/runs/{run_id}/restore), or remove "
                "or fix those rows first",
                dangling,
            )
        if guard is not None:
            guard.leave(conn)
    for record in ordered:
        log.info(
            "backup restored",
            backup_id=record.backup_id,
            table=record.table,
            rows=restored[record.table],
        )
    return restored


def _describe(dangling: dict[str, int]) -> str:
    parts = []
    for qualified, count in dangling.items():
        table, column = qualified.split(".")
        parent = next(c.references for c in current().tables[table].columns if c.name == column)
        parts.append(f"{count} {table} rows whose {column} is not an id in {parent}")
    return " and ".join(parts)
