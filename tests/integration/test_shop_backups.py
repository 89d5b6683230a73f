"""Backups of tables of every column type, and restores from them, on SQLite and PostgreSQL:
the test catalog's shop (tests/support/catalogs/shop.toml), and a backup of the shipped tables
written by the first version of the backup code, which must still restore."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import avro.datafile
import avro.io
import fastavro
import pytest
from sqlalchemy import delete

from common.backup.avroschema import META_TABLE, META_VERSION, table_schema
from common.backup.errors import RestoreConflict
from common.backup.records import BackupCatalog, BackupRecord
from common.backup.restore import restore
from common.backup.writer import take_backups
from common.blob.memory import MemoryBlobStore
from common.model.catalog import load_order, table_spec
from common.sql.catalog_tables import data_table
from common.sql.db import Database
from common.sql.loader import load_rows
from common.sql.migrate import upgrade
from tests.support.services import postgres_database
from tests.support.shop_db import (
    ROWS,
    WORDS,
    catalog_database,
    exact,
    expected,
    shop_database,
    stored,
    valid_rows,
    words_catalog,
)

CONTAINER = "backups"


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backups() -> BackupCatalog:
    blob = MemoryBlobStore()
    blob.ensure_container(CONTAINER)
    return BackupCatalog(blob, CONTAINER)


def _load_all(db: Database) -> None:
    with db.write() as conn:
        for table in load_order():
            load_rows(conn, table_spec(table), valid_rows(table))


def _avro_file(backups: BackupCatalog, record: BackupRecord) -> bytes:
    return b"".join(backups.read(record))


def test_a_run_restores_every_type_exactly_into_a_new_database(
    kind: str, tmp_path: Path, backups: BackupCatalog
) -> None:
    # Given the shop's tables with values of every type at their edges, nulls included
    with shop_database(kind, tmp_path) as db:
        _load_all(db)
        # When they are backed up
        records = take_backups(db, backups)
        assert {r.table: r.row_count for r in records} == {
            t: len(expected(t)) for t in load_order()
        }

    # And restored into a new database
    with shop_database(kind, tmp_path / "other") as fresh:
        restored = restore(fresh, backups, records)

        # Then every value comes back, to the last bit and digit
        assert restored == {t: len(expected(t)) for t in load_order()}
        with fresh.read() as conn:
            for table in load_order():
                assert exact(stored(conn, table)) == exact(expected(table)), table


def test_a_restore_puts_back_what_was_changed_since(
    kind: str, tmp_path: Path, backups: BackupCatalog
) -> None:
    with shop_database(kind, tmp_path) as db:
        _load_all(db)
        records = take_backups(db, backups, ["products", "order_lines"])
        with db.write() as conn:
            conn.execute(delete(data_table("order_lines")))
            conn.execute(delete(data_table("products")).where(data_table("products").c.id > 2))

        restore(db, backups, records)

        with db.read() as conn:
            assert exact(stored(conn, "products")) == exact(expected("products"))
            assert exact(stored(conn, "order_lines")) == exact(expected("order_lines"))


def test_a_restore_that_would_leave_dangling_references_changes_nothing(
    kind: str, tmp_path: Path, backups: BackupCatalog
) -> None:
    regions = {name: values[:2] for name, values in ROWS["regions"].items()}
    with shop_database(kind, tmp_path) as db:
        # Given a backup of regions 1 and 2, then region 3 and stores in each region
        with db.write() as conn:
            load_rows(conn, table_spec("regions"), valid_rows("regions", regions))
        [backup] = take_backups(db, backups, ["regions"])
        _load_all(db)

        # When the regions are restored, which would leave a store in region 3, gone
        with pytest.raises(RestoreConflict) as refused:
            restore(db, backups, [backup])

        # Then the restore names it and changes nothing
        with db.read() as conn:
            assert exact(stored(conn, "regions")) == exact(expected("regions"))
    assert refused.value.dangling == {"stores.region_id": 1}


def test_rows_without_a_reference_restore_and_dangle_nowhere(
    kind: str, tmp_path: Path, backups: BackupCatalog
) -> None:
    with catalog_database(words_catalog(), kind, tmp_path) as db:
        with db.write() as conn:
            load_rows(conn, table_spec("authors"), valid_rows("authors", {"id": [1]}))
            load_rows(conn, table_spec("words"), valid_rows("words", WORDS))
        records = take_backups(db, backups)
        with db.write() as conn:
            conn.execute(delete(data_table("words")))

        restored = restore(db, backups, [r for r in records if r.table == "words"])

        assert restored == {"words": 4}
        with db.read() as conn:
            assert stored(conn, "words") == list(zip(*WORDS.values(), strict=True))


def test_the_backup_file_says_each_type_in_avros_own_terms(
    tmp_path: Path, backups: BackupCatalog
) -> None:
    with shop_database("sqlite", tmp_path) as db:
        _load_all(db)
        [lines] = take_backups(db, backups, ["order_lines"])
        schema = table_schema(table_spec("order_lines"))
    data = _avro_file(backups, lines)

    fields = {f["name"]: f["type"] for f in schema["fields"]}
    assert fields["quantity"] == "long"
    assert fields["unit_price"] == {
        "type": "bytes",
        "logicalType": "decimal",
        "precision": 12,
        "scale": 4,
    }
    assert fields["shipped_on"] == ["null", {"type": "int", "logicalType": "date"}]
    assert fields["delivered_at"] == ["null", {"type": "long", "logicalType": "timestamp-micros"}]
    assert all(f["default"] is None for f in schema["fields"] if isinstance(f["type"], list))
    # Apache's own reader takes the file and the values it finds are the rows'
    reader = avro.datafile.DataFileReader(io.BytesIO(data), avro.io.DatumReader())
    rows: list[dict[str, Any]] = list(reader)
    assert [r["unit_price"] for r in rows] == ROWS["order_lines"]["unit_price"]
    assert [r["shipped_on"] for r in rows] == ROWS["order_lines"]["shipped_on"]


# What the first backup code wrote for the shipped tables: its schema, field for field.
FIRST_SCHEMAS = {
    "departments": [{"name": "id", "type": "long"}, {"name": "department", "type": "string"}],
    "hired_employees": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "datetime", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "department_id", "type": "long"},
        {"name": "job_id", "type": "long"},
    ],
}


def _first_schema(table: str) -> dict[str, Any]:
    return {
        "type": "record",
        "name": table,
        "namespace": "ingest.backup.v1",
        "doc": f"One row of the {table} table (backup schema version 1).",
        "fields": FIRST_SCHEMAS[table],
    }


@pytest.fixture
def shipped_database(kind: str, tmp_path: Path) -> Iterator[Database]:
    if kind == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp_path / 'shipped.db'}")
        upgrade(db)
        yield db
        db.dispose()
        return
    with postgres_database() as url:
        db = Database.from_url(url)
        upgrade(db)
        yield db
        db.dispose()


def _first_version_backup(
    backups: BackupCatalog, table: str, rows: list[dict[str, Any]], backup_id: str
) -> BackupRecord:
    buffer = io.BytesIO()
    fastavro.writer(
        buffer,
        fastavro.parse_schema(_first_schema(table)),
        rows,
        codec="deflate",
        metadata={META_TABLE: table, META_VERSION: "1"},
    )
    data = buffer.getvalue()
    record = BackupRecord(
        backup_id=backup_id,
        run_id="0" * 32,
        table=table,
        row_count=len(rows),
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        schema_version=1,
        created_at=datetime(2025, 1, 2, 3, 4, 5),
        last_job_id=None,
    )
    writer = backups.blob.open_writer(CONTAINER, record.blob_name)
    writer.write(data)
    writer.commit(record.to_metadata())
    return record


def test_the_shipped_tables_schema_is_the_one_the_first_backups_have() -> None:
    for table in FIRST_SCHEMAS:
        assert table_schema(table_spec(table)) == _first_schema(table)


def test_a_backup_the_first_version_wrote_still_restores(
    shipped_database: Database, backups: BackupCatalog
) -> None:
    hired_at = datetime(2021, 7, 27, 16, 2, 8, 123_456, tzinfo=UTC)
    records = [
        _first_version_backup(backups, "departments", [{"id": 1, "department": "Ops"}], "a" * 32),
        _first_version_backup(
            backups,
            "hired_employees",
            [{"id": 9, "name": "Ada", "datetime": hired_at, "department_id": 1, "job_id": 1}],
            "b" * 32,
        ),
    ]
    with shipped_database.write() as conn:
        conn.execute(data_table("jobs").insert(), [{"id": 1, "job": "Engineer"}])

    assert backups.get("a" * 32) == records[0]
    assert restore(shipped_database, backups, records) == {"departments": 1, "hired_employees": 1}
    with shipped_database.read() as conn:
        assert stored(conn, "hired_employees") == [(9, "Ada", hired_at.replace(tzinfo=None), 1, 1)]
