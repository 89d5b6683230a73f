"""The SQL Server bulk insert run for real through unixODBC and pyodbc, against PostgreSQL's
ODBC driver: the same cursor code, parameter arrays and row-count check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pyarrow as pa
import pyodbc
import pytest
from sqlalchemy.engine import make_url

from common.odbc_bulk import fast_insert, rows_of
from tests.support.services import postgres_database, unavailable


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
    cursor = connection.cursor()  # type: ignore[attr-defined]
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
