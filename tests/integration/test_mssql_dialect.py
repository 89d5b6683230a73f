"""Every statement the service runs, compiled for SQL Server and held to what SQL Server takes.

The whole service runs here on SQLite while a cursor hook records every statement SQLAlchemy
executes and the parameters it binds; each is then compiled with the ``mssql`` dialect and
checked by ``tests.support.tsql`` (the T-SQL grammar plus a deny-list), and no statement may
bind more than SQL Server's 2,100 parameters, at the largest block and batch sizes. Migrations
are rendered offline for SQL Server and checked the same way. The check itself is held to
negative controls: each PostgreSQL or SQLite construct below must fail it. The statements of
SQL Server's own code paths are run through pyodbc in ``test_odbc_bulk.py``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.sql import ClauseElement, visitors
from sqlalchemy.sql.elements import ReleaseSavepointClause
from sqlalchemy.sql.functions import FunctionElement

from api.app import create_app
from common.bootstrap import build_services
from common.errors import PermanentError
from common.model.catalog import load_order
from common.queue import OutgoingMessage
from common.sql.bulk import existing_ids_query, id_in
from common.sql.catalog_tables import data_table
from common.sql.db import SNAPSHOT_ISOLATION
from common.sql.migrate import (
    MSSQL_RELEASE_LOCK,
    MSSQL_TAKE_LOCK,
    check_applock_status,
    offline_sql,
    upgrade,
)
from common.stores.hire_counts import counting
from common.usecases.summary import fold_changes
from tests.conftest import NO_WAIT_RETRY, SAMPLE_DATA, make_settings
from tests.support.flow import drain
from tests.support.tsql import (
    MAX_PARAMETERS,
    MSSQL,
    NOT_RESERVED,
    as_tsql,
    denied,
    grammar_errors,
    placeholders,
    problems,
)

# Blocks and batches as large as they come: a block of this many rows (the default 2 MiB
# CHUNK_BYTES holds about 43,000) in one transaction, and the largest JSON batch.
BLOCK_ROWS = 25_000
BATCH_ROWS = 1000


def _hired_csv(ids: list[int]) -> bytes:
    rng = random.Random(7)
    lines = (
        f"{i},Person {i},2021-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z,"
        f"{rng.randint(1, 12)},{rng.randint(1, 183)}"
        for i in ids
    )
    return ("\n".join(lines) + "\n").encode()


Recorded = list[tuple[ClauseElement, int]]


def _run_everything(tmp_path: Path) -> Recorded:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'x.db'}",
        block_bytes=16 * 1024 * 1024,
        upload_block_bytes=16 * 1024 * 1024,
        part_bytes=64 * 1024 * 1024,
    )
    services = build_services(settings, retry=NO_WAIT_RETRY)
    upgrade(services.db)
    seen: Recorded = []

    @event.listens_for(services.db.engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, _sql: str, params: Any, context: Any, many: bool) -> None:
        compiled = getattr(context, "compiled", None)
        if compiled is None or not isinstance(compiled.statement, ClauseElement):
            return
        if isinstance(compiled.statement, ReleaseSavepointClause):
            return  # SQL Server has no RELEASE SAVEPOINT: its dialect sends nothing for it
        per_row = params[0] if many and params else params
        seen.append((compiled.statement, len(per_row or ())))

    with TestClient(create_app(services=services)) as client:
        files = {t: (f"{t}.csv", (SAMPLE_DATA / f"{t}.csv").read_bytes()) for t in load_order()}
        assert client.post("/uploads", files=files).status_code == 202
        drain(services)
        # The largest block, inserted, then replaced in part: the delete of replaced ids and the
        # id lookups see BLOCK_ROWS ids at once, in runs and scattered.
        new_ids = list(range(10_000, 10_000 + BLOCK_ROWS))
        replaced = new_ids[::2] + list(range(200_000, 200_000 + BLOCK_ROWS // 2))
        for ids, params in ((new_ids, {}), (replaced, {"on_conflict": "update"})):
            answer = client.post(
                "/uploads/hired_employees",
                content=_hired_csv(ids),
                headers={"content-type": "text/csv"},
                params={"filename": f"h{len(params)}.csv", **params},
            )
            assert answer.status_code == 202, answer.text
            drain(services)
        job = client.get("/jobs?table=hired_employees&limit=1").json()["items"][0]
        half = BLOCK_ROWS // 2
        assert (job["status"], job["rows_inserted"], job["rows_updated"]) == (
            "succeeded",
            half,
            half,
        ), job
        # Staged loads publish with INSERT … SELECT: one replacing rows, one replacing the table.
        for params in ({"on_conflict": "update", "atomic": "true"}, {"write": "replace"}):
            answer = client.post(
                "/uploads/hired_employees",
                content=_hired_csv(list(range(20_000, 20_100))),
                headers={"content-type": "text/csv"},
                params={"filename": f"s{len(params)}.csv", **params},
            )
            assert answer.status_code == 202, answer.text
            drain(services)
        assert client.post("/reports/verify?repair=true").json()["matches"] is True
        # Folds that insert, update and delete counts: rows moved to one key, then some on.
        for moved, at in ((50, "2022-01-01T00:00:00Z"), (10, "2022-04-01T00:00:00Z")):
            rows = [
                {"id": 20_000 + i, "name": "P", "datetime": at, "department_id": 1, "job_id": 1}
                for i in range(moved)
            ]
            answer = client.post(
                "/tables/hired_employees/rows?on_conflict=update", json={"rows": rows}
            )
            assert answer.json()["updated"] == moved, answer.text
            assert fold_changes(services.db) > 0
        for on_conflict in ("reject", "update"):
            batch = [{"id": 5000 + i, "department": f"D{i}"} for i in range(BATCH_ROWS)]
            answer = client.post(
                f"/tables/departments/rows?on_conflict={on_conflict}", json={"rows": batch}
            )
            assert answer.status_code == 200, answer.text
        refused = client.post(
            "/tables/departments/rows?atomic=true",
            json={"rows": [{"id": 1, "department": "Taken"}, {"id": 9999, "department": "New"}]},
        )
        assert refused.status_code == 422, refused.text
        # Staged loads, published in one transaction: checked again, judged, replaced, dry run.
        staged = {
            "departments": [{"write": "replace"}, {"dry_run": "true"}],
            "jobs": [{"atomic": "true", "on_conflict": "update", "max_bad_records": "5"}],
            "hired_employees": [
                {"max_bad_percent": "50", "skip_leading_rows": "1", "on_conflict": "update"}
            ],
        }
        for table, variants in staged.items():
            for params in variants:
                answer = client.post(
                    f"/uploads/{table}",
                    content=(SAMPLE_DATA / f"{table}.csv").read_bytes(),
                    headers={"content-type": "text/csv"},
                    params={"filename": f"staged-{len(params)}.csv", "force": "true", **params},
                )
                assert answer.status_code == 202, answer.text
                drain(services)
        first = client.get("/jobs?table=hired_employees&limit=50").json()["items"][-1]
        assert client.post(f"/jobs/{first['job_id']}/retry-rejected").status_code == 202
        drain(services)
        for path in (
            "/jobs",
            "/jobs?status=succeeded&table=jobs",
            "/reports/hires-by-quarter?year=2021",
            "/reports/departments-above-mean?year=2021",
            "/dead-letters",
            "/readyz",
            f"/jobs/{job['job_id']}/rejected-rows",
        ):
            assert client.get(path).status_code == 200, path
        run = client.post("/backups")
        assert run.status_code in (200, 201, 202)
        restore = client.post(f"/backups/runs/{run.json()['run_id']}/restore")
        assert restore.status_code == 200, restore.text
        # A poison message, dead-lettered, listed, resubmitted and purged.
        services.queue.send([OutgoingMessage(b"not json", "poison")])
        drain(services)
        letter = client.get("/dead-letters").json()["items"][0]["id"]
        assert client.post(f"/dead-letters/{letter}/resubmit").status_code == 202
        drain(services)
        letter = client.get("/dead-letters").json()["items"][0]["id"]
        assert client.delete(f"/dead-letters/{letter}").status_code == 204
    services.close()
    return seen


def _sqlite_branch(statement: ClauseElement) -> bool:
    """A statement built by the SQLite branch of a dialect switch (``loader.id_in``'s
    ``json_each``): its SQL Server branch (``OPENJSON``) runs in ``test_odbc_bulk.py``."""
    return any(
        isinstance(element, FunctionElement) and element.name == "json_each"
        for element in visitors.iterate(statement)
    )


def test_every_statement_the_service_runs_is_t_sql_with_at_most_2100_parameters(
    tmp_path: Path,
) -> None:
    recorded = _run_everything(tmp_path)

    kinds = {type(s).__name__ for s, _ in recorded}
    assert {"Select", "Insert", "Update", "Delete"} <= kinds
    # The staged loads were published: rows moved from staging into the tables and rejections.
    published = [str(s) for s, _ in recorded if "FROM stage_" in str(s) and "INSERT" in str(s)]
    assert any("INSERT INTO hired_employees" in s for s in published)
    assert any("INSERT INTO job_rejections" in s for s in published)
    too_many_on_sqlite = [(str(s)[:200], n) for s, n in recorded if n > MAX_PARAMETERS]
    assert not too_many_on_sqlite, too_many_on_sqlite
    branched = [s for s, _ in recorded if _sqlite_branch(s)]
    assert {type(s).__name__ for s in branched} == {"Select", "Insert", "Delete"}
    compiled = [(as_tsql(s), bound) for s, bound in recorded if not _sqlite_branch(s)]
    assert max(bound for _, bound in compiled) > 0
    too_many = {
        sql[:200]: n
        for sql, bound in compiled
        if (n := max(bound, placeholders(sql))) > MAX_PARAMETERS
    }
    assert not too_many, too_many
    refused = problems([sql for sql, _ in compiled])
    assert not refused, refused


# Negative controls: PostgreSQL and SQLite constructs SQL Server does not have. Each must fail.
NOT_TSQL = {
    "upsert": "INSERT INTO jobs (id, job) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
    "ilike": "SELECT jobs.id FROM jobs WHERE jobs.job ILIKE ?",
    "cast": "SELECT jobs.id::varchar FROM jobs",
    "returning": "DELETE FROM jobs WHERE jobs.id = ? RETURNING jobs.id",
    "limit": "SELECT jobs.id FROM jobs ORDER BY jobs.id LIMIT ? OFFSET ?",
    "offset without order by": "SELECT jobs.id FROM jobs OFFSET ? ROWS FETCH NEXT ? ROWS ONLY",
    "fetch without offset": "SELECT jobs.id FROM jobs ORDER BY jobs.id FETCH FIRST ? ROWS ONLY",
    "for update": "SELECT queue_messages.seq FROM queue_messages FOR UPDATE SKIP LOCKED",
    "nulls last": "SELECT jobs.id FROM jobs ORDER BY jobs.job NULLS LAST",
    "array parameter": "SELECT jobs.id FROM jobs WHERE jobs.id = ANY(?)",
    "|| concatenation": "SELECT jobs.job || ? FROM jobs",
    "boolean literal": "SELECT queue_messages.seq FROM queue_messages WHERE dead_lettered = TRUE",
    "$1 placeholder": "SELECT jobs.id FROM jobs WHERE jobs.id = $1",
    ":name placeholder": "SELECT jobs.id FROM jobs WHERE jobs.id = :id",
    "json_each": "SELECT jobs.id FROM jobs WHERE jobs.id IN (SELECT value FROM json_each(?))",
    "now()": "UPDATE ingest_jobs SET updated_at = now()",
    "extract": "SELECT EXTRACT(QUARTER FROM hired_employees.datetime) FROM hired_employees",
    "ntext/image": "CREATE TABLE t (raw NTEXT NOT NULL, body IMAGE NOT NULL)",
    "create if not exists": "CREATE TABLE IF NOT EXISTS t (id BIGINT)",
    "boolean type": "CREATE TABLE t (flag BOOLEAN NOT NULL)",
    "insert or ignore": "INSERT OR IGNORE INTO jobs (id, job) VALUES (?, ?)",
    "advisory lock": "SELECT pg_advisory_lock(?)",
    "vacuum": "VACUUM (ANALYZE) hired_employees",
    "distinct on": "SELECT DISTINCT ON (jobs.job) jobs.id FROM jobs",
}
# T-SQL the service relies on, which the check must take.
TSQL = {
    "merge": "MERGE INTO jobs AS t USING (SELECT ? AS id, ? AS job) AS s ON t.id = s.id "
    "WHEN MATCHED THEN UPDATE SET job = s.job "
    "WHEN NOT MATCHED THEN INSERT (id, job) VALUES (s.id, s.job);",
    "top with hints": "SELECT TOP 1 queue_messages.seq FROM queue_messages "
    "WITH (UPDLOCK, READPAST, ROWLOCK) WHERE queue_messages.dead_lettered = 0 "
    "ORDER BY queue_messages.seq",
    "offset fetch": "SELECT jobs.id FROM jobs ORDER BY jobs.id "
    "OFFSET ? ROWS FETCH FIRST ? ROWS ONLY",
    "openjson": "SELECT jobs.id FROM jobs WHERE jobs.id IN "
    "(SELECT CAST(value AS BIGINT) AS anon_1 FROM openjson(?))",
    "output": "DELETE FROM departments OUTPUT deleted.id WHERE departments.id = ?",
    "literals": "SELECT 'a::b LIMIT 1 TRUE' AS [text], N'ON CONFLICT' AS x",
    "for json": "SELECT jobs.id FROM jobs FOR JSON PATH",
}


@pytest.fixture(scope="module", autouse=True)
def _parse_the_fixed_statements_at_once() -> None:
    """One run of the grammar for every statement known before the tests run."""
    grammar_errors(
        [
            *NOT_TSQL.values(),
            *TSQL.values(),
            *_migration_batches(),
            MSSQL_TAKE_LOCK,
            MSSQL_RELEASE_LOCK,
            _SNAPSHOT,
            *(as_tsql(existing_ids_query(table, "mssql")) for table in load_order()),
            _UNCOUNT_BY_IDS,
        ]
    )


def _migration_batches() -> list[str]:
    script = offline_sql("mssql+pyodbc://")
    return [b.strip() for b in script.split("\nGO\n") if b.strip()]


_SNAPSHOT = f"SET TRANSACTION ISOLATION LEVEL {SNAPSHOT_ISOLATION['mssql']}"


def test_the_check_refuses_each_construct_sql_server_lacks() -> None:
    refused = problems(list(NOT_TSQL.values()))

    assert set(refused) == set(NOT_TSQL.values()), set(NOT_TSQL.values()) - set(refused)


def test_the_check_takes_the_t_sql_the_service_relies_on() -> None:
    assert problems(list(TSQL.values())) == {}


def test_the_grammar_and_the_deny_list_each_catch_what_the_other_lets_through() -> None:
    statements = list(NOT_TSQL.values())
    by_grammar = {s for s, e in zip(statements, grammar_errors(statements), strict=True) if e}
    by_list = {s for s in statements if denied(s)}

    assert by_grammar | by_list == set(statements)
    assert NOT_TSQL["fetch without offset"] in by_grammar - by_list
    assert NOT_TSQL["boolean literal"] in by_list - by_grammar
    assert NOT_TSQL["|| concatenation"] in by_list - by_grammar


def test_the_words_bracketed_for_the_grammar_are_not_reserved_in_sql_server() -> None:
    # SQLAlchemy's list is SQL Server's reserved keywords; it brackets each of them itself.
    assert not set(NOT_RESERVED) & set(MSSQL.preparer.reserved_words)


def test_the_migrations_render_as_t_sql_with_the_types_a_live_upgrade_gets() -> None:
    script = offline_sql("mssql+pyodbc://")

    batches = _migration_batches()
    assert any("CREATE TABLE hired_employees" in b for b in batches)
    assert "DATETIME2(6)" in script and "NVARCHAR(255)" in script
    # Long text and bytes as a live upgrade on SQL Server 2012+ gets them, not NTEXT/IMAGE.
    for column in ("error", "raw", "errors", "dead_letter_reason", "dead_letter_description"):
        assert re.search(rf"\b{column} NVARCHAR\(max\)", script), column
    assert re.search(r"\bbody VARBINARY\(max\) NOT NULL", script)
    assert problems(batches) == {}


def test_the_migration_lock_and_the_backup_snapshot_are_t_sql() -> None:
    assert problems([MSSQL_TAKE_LOCK, MSSQL_RELEASE_LOCK, _SNAPSHOT]) == {}
    assert SNAPSHOT_ISOLATION["mssql"] == "SNAPSHOT"


@pytest.mark.parametrize("status", [0, 1])
def test_a_granted_migration_lock_lets_the_upgrade_run(status: int) -> None:
    check_applock_status(status)


@pytest.mark.parametrize(
    ("status", "why"), [(-1, "timed out"), (-3, "deadlock"), (-999, "refused")]
)
def test_a_migration_lock_not_granted_stops_the_upgrade(status: int, why: str) -> None:
    with pytest.raises(PermanentError, match=why):
        check_applock_status(status)


# The hire counts of rows about to be replaced, their ids as one JSON parameter.
_UNCOUNT_BY_IDS = as_tsql(
    counting(data_table("hired_employees"), id_in("hired_employees", "mssql"), -1)
)


def test_the_hire_counts_of_replaced_rows_are_t_sql_with_one_json_parameter() -> None:
    assert "OPENJSON" in _UNCOUNT_BY_IDS.upper() and placeholders(_UNCOUNT_BY_IDS) == 1
    assert problems([_UNCOUNT_BY_IDS]) == {}


def test_the_id_lookups_take_one_json_parameter_on_sql_server() -> None:
    statements = [as_tsql(existing_ids_query(table, "mssql")) for table in load_order()]

    assert all("OPENJSON" in sql.upper() and placeholders(sql) == 1 for sql in statements)
    assert problems(statements) == {}
