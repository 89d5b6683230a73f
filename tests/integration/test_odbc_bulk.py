"""The SQL Server bulk insert run for real through unixODBC and pyodbc, against PostgreSQL's
ODBC driver: the same cursor code, parameter arrays and row-count check; and the loader's and
the backups' SQL Server paths through SQLAlchemy's mssql dialect on that driver
(``tests/support/mssql_odbc.py``), with every request it sends held to SQL Server's limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa
import pyodbc
import pytest
from sqlalchemy.engine import make_url

from common.backup.writer import snapshot
from common.model.catalog import table_spec
from common.pipeline.jsonrows import rows_from_json
from common.pipeline.validation import validate
from common.sql.catalog_tables import data_table
from common.sql.db import Database
from common.sql.odbc_bulk import fast_insert, rows_of
from common.stores.writes import Written, write_rows
from common.usecases.summary import check_summary, fold_changes
from tests.support.mssql_odbc import Sent, mssql_on_postgres
from tests.support.services import postgres_database, unavailable
from tests.support.tsql import MAX_PARAMETERS, problems


@pytest.fixture
def odbc_connection() -> Iterator[object]:
    if "PostgreSQL Unicode" not in pyodbc.drivers():
        unavailable("the PostgreSQL ODBC driver (Debian odbc-postgresql) under unixODBC")
    with postgres_database() as url:
        parsed = make_url(url)
        conn = pyodbc.connect(
            f"DRIVER={{PostgreSQL Unicode}};SERVER={parsed.host};PORT={parsed.port or 5432};"
            f"DATABASE={parsed.database};UID={parsed.username};PWD={parsed.password or ''}",
            autocommit=False,
        )
        cur = conn.cursor()
        cur.execute(
            "CREATE TABLE stage_hired (line BIGINT NOT NULL, id BIGINT, name VARCHAR(255),"
            " datetime TIMESTAMP, department_id BIGINT, job_id BIGINT)"
        )
        conn.commit()
        yield conn
        conn.close()


def _insert(connection: object, table: pa.Table) -> None:
    timestamps = [i for i, f in enumerate(table.schema) if pa.types.is_timestamp(f.type)]
    cursor = connection.cursor()
    fast_insert(cursor, "stage_hired", table.column_names, rows_of(table), timestamps)
    cursor.close()


def _rows(count: int) -> pa.Table:
    return pa.table(
        {
            "line": pa.array(range(1, count + 1), pa.int64()),
            "id": pa.array(range(1, count + 1), pa.int64()),
            "name": pa.array([f"Émile «{i}» O'Brien" for i in range(count)]),
            "datetime": pa.array(
                [
                    datetime(2021, 1 + i % 12, 1 + i % 28, i % 24, 0, 7, 123000)
                    for i in range(count)
                ],
                pa.timestamp("us"),
            ),
            "department_id": pa.array([1 + i % 12 for i in range(count)], pa.int64()),
            "job_id": pa.array([1 + i % 183 for i in range(count)], pa.int64()),
        }
    )


def test_every_row_arrives_with_its_types_through_fast_executemany(odbc_connection) -> None:  # type: ignore[no-untyped-def]
    table = _rows(2500)

    _insert(odbc_connection, table)
    odbc_connection.commit()

    cur = odbc_connection.cursor()
    cur.execute(
        "SELECT line, id, name, datetime, department_id, job_id FROM stage_hired ORDER BY line"
    )
    stored = [tuple(r) for r in cur.fetchall()]
    assert stored == list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def test_a_row_the_database_refuses_raises_instead_of_vanishing(odbc_connection) -> None:  # type: ignore[no-untyped-def]
    table = _rows(5)
    names = table.column("name").to_pylist()
    names[3] = "x" * 300  # longer than VARCHAR(255)
    table = table.set_column(2, "name", pa.array(names))

    with pytest.raises(pyodbc.Error):
        _insert(odbc_connection, table)
    odbc_connection.rollback()

    cur = odbc_connection.cursor()
    cur.execute("SELECT COUNT(*) FROM stage_hired")
    assert cur.fetchone()[0] == 0


@pytest.fixture
def sql_server_path() -> Iterator[tuple[Database, Sent, str]]:
    with mssql_on_postgres() as found:
        db = found[0]
        with db.write() as conn:
            conn.execute(
                data_table("jobs").insert(), [{"id": i, "job": f"Job {i}"} for i in range(1, 184)]
            )
        yield found


def _load(
    db: Database, table: str, rows: list[dict[str, object]], on_conflict: str = "reject"
) -> Written:
    spec = table_spec(table)
    with db.write() as conn:
        return write_rows(conn, spec, validate(spec, rows_from_json(spec, rows)), on_conflict)


def _departments(db: Database) -> list[tuple[int, str]]:
    t = data_table("departments")
    with db.read() as conn:
        return [(int(r.id), str(r.department)) for r in conn.execute(t.select().order_by(t.c.id))]


def test_rows_are_counted_by_their_own_ids_after_fast_executemany(
    sql_server_path: tuple[Database, Sent, str],
) -> None:
    db, _, _ = sql_server_path
    _load(db, "departments", [{"id": i, "department": f"D{i}"} for i in (1, 2, 3, 5)], "reject")

    # Ids 4 and 6 span 4..6, where 5 already is: only the two new rows may be counted.
    loaded = _load(
        db, "departments", [{"id": 4, "department": "D4"}, {"id": 6, "department": "D6"}], "reject"
    )
    replaced = _load(
        db,
        "departments",
        [{"id": 3, "department": "Three"}, {"id": 7, "department": "D7"}],
        "update",
    )

    assert (loaded.inserted, loaded.updated, loaded.rejected) == (2, 0, [])
    assert (replaced.inserted, replaced.updated) == (1, 1)
    assert [i for i, _ in _departments(db)] == [1, 2, 3, 4, 5, 6, 7]
    assert dict(_departments(db))[3] == "Three"


# A block far past 2,100 ids (and past the 10,000 the delete once sent in one IN list)
# and the largest batch; ids scattered (one JSON parameter) and in runs (a range scan).
BLOCK_ROWS = 25_000


def _hired(ids: range | list[int], name: str) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"{name} {i}",
            "datetime": "2021-03-04T05:06:07.123456Z",
            "department_id": 1 + i % 12,
            "job_id": 1 + i % 183,
        }
        for i in ids
    ]


def test_the_largest_blocks_and_batches_stay_within_sql_servers_limits(
    sql_server_path: tuple[Database, Sent, str],
) -> None:
    db, sent, _ = sql_server_path
    _load(db, "departments", [{"id": i, "department": f"D{i}"} for i in range(1, 13)], "reject")
    first = _load(db, "hired_employees", _hired(range(1, BLOCK_ROWS + 1), "First"), "reject")
    scattered = list(range(7, BLOCK_ROWS + 1, 10)) + list(range(10**9, 10**9 + BLOCK_ROWS * 9, 10))
    replacing = _load(db, "hired_employees", _hired(scattered, "Second"), "update")
    batch = _load(db, "hired_employees", _hired(range(1, 2001, 2), "Batch"), "update")

    assert (first.inserted, first.updated) == (BLOCK_ROWS, 0)
    assert (replacing.inserted + replacing.updated, replacing.updated) == (
        len(scattered),
        BLOCK_ROWS // 10,
    )
    assert batch.updated == 1000
    # The reports' summary followed every one of them, and folds on SQL Server's path too.
    assert check_summary(db).matches
    assert fold_changes(db) > 0
    assert check_summary(db).hires == BLOCK_ROWS + len(scattered) - BLOCK_ROWS // 10
    requests = sent.requests
    assert max(r.rows for r in requests) >= BLOCK_ROWS  # fast_executemany arrays went through
    too_many = [(r.sql[:120], r.parameters) for r in requests if r.parameters > MAX_PARAMETERS]
    assert not too_many, too_many
    assert any("OPENJSON(" in r.sql.upper() and r.sql.startswith("DELETE") for r in requests)
    assert problems(sent.statements()) == {}


def test_a_backup_reads_one_snapshot_on_sql_server(
    sql_server_path: tuple[Database, Sent, str],
) -> None:
    db, sent, url = sql_server_path
    _load(db, "departments", [{"id": 1, "department": "One"}], "reject")
    table = data_table("departments")
    other_writer = Database.from_url(url)
    try:
        with snapshot(db) as conn:
            before = conn.execute(table.select()).all()
            with other_writer.write() as other:  # a load commits while the backup reads
                other.execute(table.insert(), [{"id": 2, "department": "Two"}])
            during = conn.execute(table.select()).all()
        assert before == during
        assert len(_departments(db)) == 2
    finally:
        other_writer.dispose()
    isolation = [r.sql for r in sent.requests if "ISOLATION LEVEL" in r.sql]
    assert isolation[0] == "SET TRANSACTION ISOLATION LEVEL SNAPSHOT"
