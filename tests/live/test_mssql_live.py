"""The whole pipeline on a real SQL Server or Azure SQL database: ``TEST_MSSQL_URL`` names an
empty database, e.g.
``mssql+pyodbc://sa:pw@127.0.0.1:1433/ingest?driver=ODBC+Driver+18+for+SQL+Server&TrustServerCertificate=yes``.
The schema is created in it and its tables are emptied first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from common.bootstrap import Services
from common.migrate import upgrade
from common.schema import data_tables, metadata
from tests.conftest import SAMPLE_DATA
from tests.support.flow import api_client, count, drain_in_threads, service_set

URL = os.environ["TEST_MSSQL_URL"]


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with service_set(tmp_path, URL) as built:
        upgrade(built.db)
        with built.db.write() as conn:
            for table in reversed(metadata.sorted_tables):
                if table.name != "alembic_version":
                    conn.execute(delete(table))
        yield built


def test_the_sample_files_load_with_two_workers(services: Services) -> None:
    with api_client(services) as client:
        files = {
            t: (f"{t}.csv", (SAMPLE_DATA / f"{t}.csv").read_bytes())
            for t in ("hired_employees", "jobs", "departments")
        }
        assert client.post("/uploads", files=files).status_code == 202
        drain_in_threads(services, 2)
        jobs = {j["table"]: j for j in client.get("/jobs").json()["items"]}
        assert {t: (j["rows_inserted"], j["rows_rejected"]) for t, j in jobs.items()} == {
            "departments": (12, 0),
            "jobs": (183, 0),
            "hired_employees": (1929, 70),
        }
        assert count(services, "hired_employees") == 1929
        quarters = client.get("/reports/hires-by-quarter?year=2021").json()["rows"]
        assert sum(r["Q1"] + r["Q2"] + r["Q3"] + r["Q4"] for r in quarters) > 0
        assert client.get("/reports/departments-above-mean?year=2021").json()["rows"]


def test_batches_keep_microseconds_and_unicode(services: Services) -> None:
    with api_client(services) as client:
        client.post("/tables/departments/rows", json={"rows": [{"id": 1, "department": "Ventas"}]})
        client.post("/tables/jobs/rows", json={"rows": [{"id": 1, "job": "Ingeniera 🚀"}]})
        answer = client.post(
            "/tables/hired_employees/rows",
            json={
                "rows": [
                    {
                        "id": 1,
                        "name": "Zoë Ωmega",
                        "datetime": "2021-02-03T04:05:06.123456Z",
                        "department_id": 1,
                        "job_id": 1,
                    },
                    {
                        "id": 1,
                        "name": "again",
                        "datetime": "2021-02-03T04:05:06Z",
                        "department_id": 1,
                        "job_id": 1,
                    },
                ]
            },
        )
    assert answer.json()["inserted"] == 1
    assert answer.json()["rejected"][0]["errors"][0]["rule"] == "duplicate_id"
    with services.db.read() as conn:
        row = conn.execute(data_tables["hired_employees"].select()).one()
    assert row.name == "Zoë Ωmega"
    assert row.datetime.microsecond == 123456
