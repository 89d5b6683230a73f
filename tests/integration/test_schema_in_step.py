"""The migrations build exactly the tables ``common/sql/schema.py`` and the shipped catalog
describe."""

from __future__ import annotations

import json
from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, text

from common.model.catalog import current, table_spec
from common.sql.catalog_tables import catalog_tables
from common.sql.db import Database
from common.sql.migrate import upgrade
from common.sql.schema import metadata
from common.stores.rejections import RejectionStore


def _declared() -> MetaData:
    """The service's own tables and the shipped catalog's, in one :class:`MetaData`."""
    both = MetaData()
    for table in (*metadata.tables.values(), *catalog_tables(current()).metadata.tables.values()):
        table.to_metadata(both)
    return both


def test_the_migrated_database_matches_the_declared_schema(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, _declared())
    finally:
        db.dispose()

    assert differences == []


EARLIER = "earlier in the same input"
NO_DEPARTMENT = "departments has no id 40"


def test_rejections_stored_before_they_became_compact_read_the_same_after(
    empty_database: Database,
) -> None:
    # Given rejections stored the old way, with their messages written out
    db = empty_database
    upgrade(db, "0004")
    now = datetime(2026, 1, 2, 3, 4, 5)
    old_errors = [
        [{"column": "row", "rule": "field_count", "message": "expected 2 fields, found 3"}],
        [
            {
                "column": "id",
                "rule": "duplicate_id",
                "message": "id 7 appears earlier in the same input",
            }
        ],
        [
            {
                "column": "department_id",
                "rule": "unknown_reference",
                "message": "departments has no id 40",
            },
            {"column": "job_id", "rule": "required", "message": "job_id is required"},
        ],
    ]
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO ingest_jobs (job_id, table_name, status, content_sha256, size_bytes,"
                " blob_name, on_conflict, attempts, created_at, updated_at) VALUES ('j1',"
                " 'hired_employees', 'succeeded', 'abc', 10, 'b', 'reject', 1, :now, :now)"
            ),
            {"now": now},
        )
        for line, (raw, errors) in enumerate(
            zip(
                ["1,a,b", "7,Ann,2021-01-01T00:00:00Z,1,1", "8,Bo,2021-01-01T00:00:00Z,40,"],
                old_errors,
                strict=True,
            ),
            start=1,
        ):
            conn.execute(
                text(
                    "INSERT INTO rejected_rows (table_name, job_id, line, raw, errors, created_at)"
                    " VALUES ('hired_employees', 'j1', :line, :raw, :errors, :now)"
                ),
                {"line": line, "raw": raw, "errors": json.dumps(errors), "now": now},
            )
        conn.execute(
            text(
                "INSERT INTO rejected_rows (table_name, batch_id, line, raw, errors, created_at)"
                " VALUES ('jobs', 'b1', 4, '{\"id\": 1}', :errors, :now)"
            ),
            {
                "errors": json.dumps([{"column": "job", "rule": "wrong_type", "message": "x"}]),
                "now": now,
            },
        )

    # When the schema is brought up to date
    upgrade(db)

    # Then every rejection reads as before: line, raw text, rules and messages
    job_seq = 1
    rows, total = RejectionStore(db).page(table_spec("hired_employees"), job_seq, 10, 0)
    assert total == 3
    assert [(r.line, r.raw) for r in rows] == [
        (1, "1,a,b"),
        (2, "7,Ann,2021-01-01T00:00:00Z,1,1"),
        (3, "8,Bo,2021-01-01T00:00:00Z,40,"),
    ]
    assert [[e.as_dict() for e in r.errors] for r in rows] == [
        [{"column": "row", "rule": "field_count", "message": "expected 5 fields, found 3"}],
        old_errors[1],
        old_errors[2],
    ]
    with db.read() as conn:
        assert conn.execute(
            text(
                "SELECT b.table_name, b.rows_rejected, r.idx, r.rules FROM batches b"
                " JOIN batch_rejections r ON r.batch_seq = b.seq"
            )
        ).all() == [("jobs", 1, 4, "job:wrong_type")]
