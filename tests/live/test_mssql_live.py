"""The whole pipeline on a real SQL Server or Azure SQL database, held to what PostgreSQL gives
for the same input.

``TEST_MSSQL_URL`` names an empty database, e.g.
``mssql+pyodbc://sa:pw@127.0.0.1:1433/ingest?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes``,
with snapshot isolation allowed (Azure SQL's default; the compose stack runs
``ALTER DATABASE ingest SET ALLOW_SNAPSHOT_ISOLATION ON``). The schema is created in it and its
tables are emptied first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from common.bootstrap import Services
from common.model.catalog import load_order
from common.sql.catalog_tables import data_table
from common.sql.migrate import upgrade
from common.sql.schema import metadata
from tests.conftest import SAMPLE_DATA
from tests.support.flow import api_client, count, drain_in_threads, service_set
from tests.support.services import postgres_database

URL = os.environ["TEST_MSSQL_URL"]


@pytest.fixture
def sql_server(tmp_path: Path) -> Iterator[Services]:
    with service_set(tmp_path / "mssql", URL) as built:
        upgrade(built.db)
        with built.db.write() as conn:
            for table in reversed(metadata.sorted_tables):
                if table.name != "alembic_version":
                    conn.execute(delete(table))
        yield built


@pytest.fixture
def postgresql(tmp_path: Path) -> Iterator[Services]:
    with postgres_database() as url, service_set(tmp_path / "pg", url) as built:
        upgrade(built.db)
        yield built


UNICODE_BATCH = [
    {"id": 1, "name": "Zoë Ωmega", "datetime": "2021-02-03T04:05:06.123456Z"},
    {"id": 2, "name": "Ingeniera 🚀", "datetime": "2021-11-30T23:59:59.999999+02:00"},
    {"id": 1, "name": "again", "datetime": "2021-02-03T04:05:06Z"},
]


def _everything(services: Services) -> dict[str, Any]:
    """Load the sample files with two workers, then batches and a replacing batch; return the
    counts, the rejections, both reports, a recount of their summary and what a backup holds."""
    with api_client(services) as client:
        files = {t: (f"{t}.csv", (SAMPLE_DATA / f"{t}.csv").read_bytes()) for t in load_order()}
        assert client.post("/uploads", files=files).status_code == 202
        drain_in_threads(services, 2)
        jobs = {j["table"]: j for j in client.get("/jobs").json()["items"]}
        rejected = client.get(
            f"/jobs/{jobs['hired_employees']['job_id']}/rejected-rows", params={"limit": 1000}
        ).json()["items"]
        batch = client.post(
            "/tables/hired_employees/rows",
            json={
                "rows": [
                    {**row, "id": 100_000 + int(row["id"]), "department_id": 1, "job_id": 1}
                    for row in UNICODE_BATCH
                ]
            },
        ).json()
        replaced = client.post(
            "/tables/departments/rows?on_conflict=update",
            json={"rows": [{"id": i, "department": f"Dept {i}"} for i in range(1, 1001)]},
        ).json()
        reports = {
            path: client.get(path, params={"year": 2021}).json()
            for path in ("/reports/hires-by-quarter", "/reports/departments-above-mean")
        }
        backup = client.post("/backups").json()
        verified = client.post("/reports/verify").json()
    with services.db.read() as conn:
        hires = conn.execute(
            data_table("hired_employees")
            .select()
            .where(data_table("hired_employees").c.id > 100_000)
        ).all()
    return {
        "jobs": {
            t: (j["status"], j["rows_read"], j["rows_inserted"], j["rows_rejected"])
            for t, j in jobs.items()
        },
        "rejected": [
            (r["line"], r["raw"], sorted(e["rule"] for e in r["errors"])) for r in rejected
        ],
        "batch": (batch["inserted"], [r["index"] for r in batch["rejected"]]),
        "replaced": (replaced["inserted"], replaced["updated"]),
        "unicode rows": sorted((r.id, r.name, r.datetime) for r in hires),
        "reports": reports,
        "summary": (verified["matches"], verified["hires"]),
        "counts": {t: count(services, t) for t in load_order()},
        "backup": sorted((b["table"], b["row_count"]) for b in backup["backups"]),
    }


def test_sql_server_gives_what_postgresql_gives(sql_server: Services, postgresql: Services) -> None:
    on_sql_server = _everything(sql_server)
    on_postgresql = _everything(postgresql)

    assert on_sql_server["jobs"]["hired_employees"] == ("succeeded", 1999, 1929, 70)
    assert on_sql_server["reports"]["/reports/hires-by-quarter"]["rows"]
    assert on_sql_server["summary"][0] is True
    for key, value in on_postgresql.items():
        assert on_sql_server[key] == value, key
