"""Take backups: each table read in pages by id inside one snapshot, written to AVRO as it goes.

Rows never pile up in memory: a page of rows is read (keyset pagination on the primary key),
handed to fastavro's writer, which emits a compressed block to the blob writer whenever it
fills. The blobs of a run become visible only once every table of the run has been written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import IO, Any, cast

import structlog
from fastavro import parse_schema
from fastavro.write import Writer
from sqlalchemy import Connection, select

from common.backup.avroschema import (
    META_TABLE,
    META_VERSION,
    SCHEMA_VERSION,
    table_schema,
    to_micros,
)
from common.backup.records import BackupCatalog, BackupRecord, blob_name
from common.backup.streams import BlobSink
from common.blob import BlobWriter
from common.model.catalog import ColumnType, TableSpec, load_order, table_spec
from common.model.jobs import JobStatus
from common.sql.catalog_tables import data_table, key_column
from common.sql.db import Database, utcnow
from common.sql.schema import ingest_jobs

log = structlog.get_logger("ingest.backup")

PAGE_ROWS = 10_000


def snapshot(db: Database) -> AbstractContextManager[Connection]:
    """A read transaction that sees one state of every table, however long it lasts."""
    return db.read(snapshot=True)


def newest_job_id(conn: Connection, table: str) -> str | None:
    """The newest succeeded upload job of ``table``: the backup holds its rows."""
    j = ingest_jobs
    row = conn.execute(
        select(j.c.job_id)
        .where(j.c.table_name == table, j.c.status == JobStatus.SUCCEEDED.value)
        .order_by(j.c.finished_at.desc(), j.c.seq.desc())
        .limit(1)
    ).first()
    return str(row[0]) if row else None


def _pages(conn: Connection, spec: TableSpec, page_rows: int) -> Iterator[Sequence[Any]]:
    table = data_table(spec.name)
    key = spec.column_names.index(spec.key.name)
    last: int | None = None
    while True:
        query = select(*(table.c[n] for n in spec.column_names)).order_by(key_column(table))
        if last is not None:
            query = query.where(key_column(table) > last)
        rows = conn.execute(query.limit(page_rows)).all()
        if not rows:
            return
        yield rows
        last = int(rows[-1][key])


def _write_table(
    conn: Connection, spec: TableSpec, writer: BlobWriter, page_rows: int
) -> tuple[int, BlobSink]:
    sink = BlobSink(writer)
    avro = Writer(
        cast(IO[bytes], sink),  # fastavro needs only write, flush and seekable
        parse_schema(table_schema(spec)),
        codec="deflate",
        metadata={META_TABLE: spec.name, META_VERSION: str(SCHEMA_VERSION)},
    )
    names = spec.column_names
    stamps = {i for i, c in enumerate(spec.columns) if c.type is ColumnType.TIMESTAMP}
    count = 0
    for rows in _pages(conn, spec, page_rows):
        for row in rows:
            avro.write(
                {
                    n: to_micros(v) if i in stamps and v is not None else v
                    for i, (n, v) in enumerate(zip(names, row, strict=True))
                }
            )
        count += len(rows)
    avro.flush()
    return count, sink


def take_backups(
    db: Database,
    catalog: BackupCatalog,
    tables: Sequence[str] | None = None,
    *,
    run_id: str | None = None,
    page_rows: int = PAGE_ROWS,
) -> list[BackupRecord]:
    """Back up ``tables`` (every declared table by default) from one snapshot as one run;
    return their records, parents first.

    A ``run_id`` given (a scheduled run) makes the backup ids follow from it, so a run taken
    again after a crash replaces its own files instead of adding to them.
    """
    specs = [table_spec(t) for t in load_order() if tables is None or t in tables]
    run = run_id or uuid.uuid4().hex
    writers: list[BlobWriter] = []
    pending: list[tuple[BlobWriter, BackupRecord]] = []
    try:
        with snapshot(db) as conn:
            for spec in specs:
                backup_id = (
                    uuid.uuid5(uuid.NAMESPACE_URL, f"ingest-backup:{run}/{spec.name}").hex
                    if run_id
                    else uuid.uuid4().hex
                )
                created_at = utcnow()
                last_job = newest_job_id(conn, spec.name)
                writer = catalog.blob.open_writer(
                    catalog.container, blob_name(spec.name, backup_id)
                )
                writers.append(writer)
                count, sink = _write_table(conn, spec, writer, page_rows)
                record = BackupRecord(
                    backup_id=backup_id,
                    run_id=run,
                    table=spec.name,
                    row_count=count,
                    byte_size=sink.size,
                    sha256=sink.sha256,
                    schema_version=SCHEMA_VERSION,
                    created_at=created_at,
                    last_job_id=last_job,
                )
                pending.append((writer, record))
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer, record in pending:
        writer.commit(record.to_metadata())
        log.info(
            "backup taken",
            backup_id=record.backup_id,
            run_id=record.run_id,
            table=record.table,
            rows=record.row_count,
            bytes=record.byte_size,
        )
    return [record for _, record in pending]
