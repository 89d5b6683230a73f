"""The tour a new user takes: start the service, load the sample files, read what came of them.

Runs the real supervisor (API and workers as separate processes) and speaks HTTP over
loopback, on the embedded defaults (SQLite, one worker) and on PostgreSQL (two workers).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import (
    SAMPLE_DATA,
    binary_bytes,
    first_blank_field,
    upload_samples,
    wait_for_dead_letter,
    wait_for_jobs,
)
from tests.support.azurite import azurite
from tests.support.processes import Started, supervisor
from tests.support.servicebus import servicebus_broker
from tests.support.services import postgres_database

HIRED_COLUMNS = ["id", "name", "datetime", "department_id", "job_id"]
EXPECTED = {
    "departments": (12, 0),
    "jobs": (183, 0),
    "hired_employees": (1929, 70),
}


@pytest.fixture(params=["sqlite", "postgresql", "azure"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Started]:
    """The supervisor on the embedded defaults with one worker; on PostgreSQL with two; and
    with the production adapters — blobs on Azurite, the queue through the real Service Bus
    SDK to the test broker — on PostgreSQL with two workers."""
    if request.param == "sqlite":
        with supervisor(tmp_path, workers=1) as started:
            yield started
    elif request.param == "postgresql":
        with postgres_database() as url, supervisor(tmp_path, workers=2, database_url=url) as s:
            yield s
    else:
        with (
            postgres_database() as url,
            azurite(tmp_path) as blobs,
            servicebus_broker() as broker,
        ):
            broker.configure_queue("ingest-jobs", lock_duration=10, max_delivery_count=10)
            with supervisor(
                tmp_path,
                workers=2,
                database_url=url,
                AZURE_STORAGE_CONNECTION_STRING=blobs.connection_string,
                SERVICEBUS_CONNECTION_STRING=broker.connection_string,
                SERVICEBUS_QUEUE_NAME="ingest-jobs",
            ) as s:
                yield s
            # Everything went through Azurite and the broker: no embedded store was used.
            assert not (tmp_path / "data" / "blobs").exists()
            assert broker.store.peek("ingest-jobs", 0, 10) == []
            assert len(broker.store.peek("ingest-jobs/$DeadLetterQueue", 0, 10)) == 1


def hires_in_2021() -> int:
    """Rows of the sample hired_employees file with every field given and hired in 2021."""
    with (SAMPLE_DATA / "hired_employees.csv").open(newline="", encoding="utf-8") as f:
        return sum(
            1
            for row in csv.reader(f)
            if len(row) == 5 and all(v.strip() for v in row) and row[2].startswith("2021-")
        )


def test_tour(service: Started) -> None:
    with service.client() as client:
        # Given the three sample files, sent children first,
        answer = upload_samples(client)
        # then one job per file is queued, parents first.
        assert answer.status_code == 202, answer.text
        jobs = answer.json()["jobs"]
        tables = [j["table"] for j in jobs]
        assert sorted(tables) == sorted(EXPECTED)
        assert tables.index("hired_employees") > max(
            tables.index("departments"), tables.index("jobs")
        )
        by_table = {j["table"]: j["job_id"] for j in jobs}

        # When the workers are done, every job succeeded with the expected counts.
        finished = wait_for_jobs(service, client, list(by_table.values()))
        for table, job_id in by_table.items():
            job = finished[job_id]
            assert job["status"] == "succeeded", job
            inserted, rejected = EXPECTED[table]
            assert (job["rows_inserted"], job["rows_rejected"]) == (inserted, rejected), job
            assert job["rows_read"] == inserted + rejected
            assert (
                job["bytes_done"]
                == job["size_bytes"]
                == (SAMPLE_DATA / f"{table}.csv").stat().st_size
            )

        check_rejected_rows(client, by_table["hired_employees"])
        check_reports(client)
        check_batch(client)
        check_dead_letter(service, client)


def check_rejected_rows(client: httpx.Client, job_id: str) -> None:
    answer = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 10})
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["total"] == 70
    assert len(page["items"]) == 10
    first = page["items"][0]
    expected = first_blank_field(SAMPLE_DATA / "hired_employees.csv", HIRED_COLUMNS)
    assert first["line"] == expected.line
    assert sorted(e["column"] for e in first["errors"]) == sorted(expected.blank_columns)
    lines = (SAMPLE_DATA / "hired_employees.csv").read_text(encoding="utf-8").splitlines()
    assert first["raw"] == lines[expected.line - 1]

    as_csv = client.get(f"/jobs/{job_id}/rejected-rows", headers={"Accept": "text/csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert len(list(csv.reader(as_csv.text.splitlines()))) == 1 + 70


def check_reports(client: httpx.Client) -> None:
    quarters = client.get("/reports/hires-by-quarter", params={"year": 2021})
    assert quarters.status_code == 200, quarters.text
    rows: list[dict[str, Any]] = quarters.json()["rows"]
    assert rows
    assert sum(r["Q1"] + r["Q2"] + r["Q3"] + r["Q4"] for r in rows) == hires_in_2021()
    keys = [(r["department"].lower(), r["job"].lower()) for r in rows]
    assert keys == sorted(keys)

    above = client.get("/reports/departments-above-mean", params={"year": 2021})
    assert above.status_code == 200, above.text
    body = above.json()
    assert body["rows"]
    assert all(r["hired"] > body["mean"] for r in body["rows"])
    hired = [r["hired"] for r in body["rows"]]
    assert hired == sorted(hired, reverse=True)

    as_csv = client.get(
        "/reports/hires-by-quarter", params={"year": 2021}, headers={"Accept": "text/csv"}
    )
    assert as_csv.status_code == 200
    assert as_csv.text.splitlines()[0] == "department,job,Q1,Q2,Q3,Q4"


def check_batch(client: httpx.Client) -> None:
    answer = client.post(
        "/tables/departments/rows",
        json={"rows": [{"id": 1001, "department": "Data Platform"}, {"id": 1002}]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["inserted"] == 1
    assert len(body["rejected"]) == 1
    rejected = body["rejected"][0]
    assert rejected["index"] == 1
    assert rejected["row"] == {"id": 1002}
    assert [e["column"] for e in rejected["errors"]] == ["department"]

    too_many = client.post(
        "/tables/departments/rows",
        json={"rows": [{"id": i, "department": "x"} for i in range(1, 1002)]},
    )
    assert too_many.status_code == 422
    assert too_many.headers["content-type"].startswith("application/problem+json")


def check_dead_letter(service: Started, client: httpx.Client) -> None:
    # Given a binary file uploaded as if it were a CSV,
    answer = client.post(
        "/uploads/jobs",
        content=binary_bytes(),
        headers={"Content-Type": "application/octet-stream"},
        params={"filename": "not-a.csv"},
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert answer.headers["location"] == f"/jobs/{job_id}"

    # then its job fails for good, with a readable reason, and its message is dead-lettered.
    job = wait_for_jobs(service, client, [job_id])[job_id]
    assert job["status"] == "failed", job
    assert job["error"].startswith("NotText"), job
    letter = wait_for_dead_letter(service, client, job_id)
    assert letter["reason"] == "NotText"
    assert "not text" in letter["description"]

    # When an operator resubmits it, it is queued again, fails again, and is back in dead letters.
    again = client.post(f"/dead-letters/{letter['id']}/resubmit")
    assert again.status_code == 202, again.text
    job = wait_for_jobs(service, client, [job_id])[job_id]
    assert job["status"] == "failed", job
    assert job["error"].startswith("NotText"), job
    assert wait_for_dead_letter(service, client, job_id)["reason"] == "NotText"
