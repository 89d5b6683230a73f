"""Every statement the service runs, compiled for SQL Server and read by a T-SQL parser.

The whole service runs here on SQLite while every SQLAlchemy statement it executes is recorded;
each is then compiled with the ``mssql`` dialect and parsed by sqlglot as T-SQL. Migrations are
rendered offline for SQL Server and parsed the same way. A statement that SQL Server could not
take fails here, before it meets a real server.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.dialects import mssql
from sqlalchemy.sql import ClauseElement

from api.app import create_app
from common.bootstrap import build_services
from common.loader import existing_ids_query
from common.migrate import offline_sql, upgrade
from common.tables import TABLES
from tests.conftest import NO_WAIT_RETRY, SAMPLE_DATA, make_settings
from worker.main import build_consumer

MSSQL = mssql.dialect()  # type: ignore[no-untyped-call]


def _tsql(sql: str) -> None:
    assert " LIMIT " not in sql.upper(), sql
    try:
        sqlglot.parse(sql, read="tsql", error_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.ParseError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"not T-SQL: {exc}\n{sql}")


def _run_everything(tmp_path: Path) -> list[ClauseElement]:
    services = build_services(
        make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}"), retry=NO_WAIT_RETRY
    )
    upgrade(services.db)
    seen: list[ClauseElement] = []

    @event.listens_for(services.db.engine, "before_execute")
    def _record(_conn: Any, clause: Any, *_args: Any) -> None:
        if isinstance(clause, ClauseElement):
            seen.append(clause)

    with TestClient(create_app(services=services)) as client:
        files = {t: (f"{t}.csv", (SAMPLE_DATA / f"{t}.csv").read_bytes()) for t in TABLES}
        assert client.post("/uploads", files=files).status_code == 202
        consumer = build_consumer(services, threading.Event())
        while consumer.run_once() or services.queue.active_count():
            pass
        client.post("/tables/departments/rows", json={"rows": [{"id": 99, "department": "X"}]})
        client.post(
            "/tables/departments/rows?on_conflict=update",
            json={"rows": [{"id": 99, "department": "Y"}]},
        )
        for path in (
            "/jobs",
            "/jobs?status=succeeded&table=jobs",
            "/reports/hires-by-quarter?year=2021",
            "/reports/departments-above-mean?year=2021",
            "/dead-letters",
            "/readyz",
        ):
            assert client.get(path).status_code == 200
        job = client.get("/jobs?table=hired_employees").json()["items"][0]["job_id"]
        assert client.get(f"/jobs/{job}/rejected-rows").status_code == 200
        # A poison message, dead-lettered, listed, resubmitted and purged.
        from common.queue import OutgoingMessage

        services.queue.send([OutgoingMessage(b"not json", "poison")])
        consumer.run_once()
        letter = client.get("/dead-letters").json()["items"][0]["id"]
        client.post(f"/dead-letters/{letter}/resubmit")
        consumer.run_once()
        letter = client.get("/dead-letters").json()["items"][0]["id"]
        assert client.delete(f"/dead-letters/{letter}").status_code == 204
    services.close()
    return seen


def test_every_statement_the_service_runs_compiles_to_t_sql(tmp_path: Path) -> None:
    statements = _run_everything(tmp_path)

    kinds = {type(s).__name__ for s in statements}
    assert {"Select", "Insert", "Update", "Delete"} <= kinds
    for statement in statements:
        _tsql(str(statement.compile(dialect=MSSQL, compile_kwargs={"render_postcompile": True})))


def test_the_migrations_render_as_t_sql() -> None:
    script = offline_sql("mssql+pyodbc://")

    batches = [b.strip() for b in script.split("\nGO\n") if b.strip()]
    assert any("CREATE TABLE hired_employees" in b for b in batches)
    assert "DATETIME2(6)" in script
    assert "NVARCHAR(255)" in script
    for batch in batches:
        _tsql(batch)


def test_the_id_lookups_take_one_json_parameter_on_sql_server() -> None:
    for table in TABLES:
        query = existing_ids_query(table, "mssql")
        sql = str(query.compile(dialect=MSSQL))
        assert "OPENJSON" in sql.upper()
        _tsql(sql)
