"""The sample files, uploaded together and ingested by a real worker, on SQLite and PostgreSQL.

Every expectation is computed here from the CSV files with the ``csv`` module, independently of
the service's parser, validator and SQL.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.bootstrap import Services
from tests.conftest import SAMPLE_DATA
from tests.support.flow import api_client, count, drain, job, table_rows

FILES = ("departments", "jobs", "hired_employees")
HIRED_COLUMNS = ("id", "name", "datetime", "department_id", "job_id")


@dataclass(frozen=True)
class Hire:
    id: int
    department_id: int
    job_id: int
    at: datetime  # UTC


@dataclass(frozen=True)
class Truth:
    departments: dict[int, str]
    jobs: dict[int, str]
    hires: list[Hire]
    rejected: dict[int, str]  # line → the empty column


def read_truth() -> Truth:
    def named(table: str) -> dict[int, str]:
        with (SAMPLE_DATA / f"{table}.csv").open(newline="", encoding="utf-8") as f:
            return {int(i): name for i, name in csv.reader(f)}

    departments, jobs = named("departments"), named("jobs")
    hires: list[Hire] = []
    rejected: dict[int, str] = {}
    with (SAMPLE_DATA / "hired_employees.csv").open(newline="", encoding="utf-8") as f:
        for line, fields in enumerate(csv.reader(f), start=1):
            empty = [c for c, v in zip(HIRED_COLUMNS, fields, strict=True) if not v.strip()]
            if empty:
                assert len(empty) == 1, "the sample has one empty column per bad row"
                rejected[line] = empty[0]
                continue
            ident, _name, when, dept, job_id = fields
            at = datetime.fromisoformat(when).astimezone(UTC).replace(tzinfo=None)
            hire = Hire(int(ident), int(dept), int(job_id), at)
            assert hire.department_id in departments and hire.job_id in jobs
            hires.append(hire)
    return Truth(departments, jobs, hires, rejected)


TRUTH = read_truth()


def expected_hires_by_quarter(year: int) -> list[dict[str, Any]]:
    quarters: dict[tuple[str, str], list[int]] = {}
    for h in TRUTH.hires:
        if h.at.year != year:
            continue
        key = (TRUTH.departments[h.department_id], TRUTH.jobs[h.job_id])
        quarters.setdefault(key, [0, 0, 0, 0])[(h.at.month - 1) // 3] += 1
    ordered = sorted(quarters, key=lambda k: (k[0].lower(), k[1].lower(), k))
    return [
        {"department": d, "job": j, **{f"Q{q + 1}": quarters[d, j][q] for q in range(4)}}
        for d, j in ordered
    ]


def expected_departments_above_mean(year: int) -> tuple[float, list[dict[str, Any]]]:
    hired = Counter(h.department_id for h in TRUTH.hires if h.at.year == year)
    per_department = {d: hired.get(d, 0) for d in TRUTH.departments}
    mean = sum(per_department.values()) / len(per_department)
    above = sorted((d for d, n in per_department.items() if n > mean), key=lambda d: (-hired[d], d))
    return mean, [
        {"id": d, "department": TRUTH.departments[d], "hired": per_department[d]} for d in above
    ]


def upload_all_shuffled(client: TestClient) -> dict[str, dict[str, Any]]:
    """POST /uploads with the three files, children before parents; return jobs by table."""
    order = ("hired_employees", "departments", "jobs")
    files = [
        (table, (f"{table}.csv", (SAMPLE_DATA / f"{table}.csv").read_bytes(), "text/csv"))
        for table in order
    ]
    response = client.post("/uploads", files=files)
    assert response.status_code == 202, response.text
    jobs = response.json()["jobs"]
    return {j["table"]: j for j in jobs}


@pytest.fixture
def loaded(services: Services) -> Iterator[tuple[TestClient, dict[str, dict[str, Any]]]]:
    """The three sample files uploaded in one request and ingested by a worker."""
    with api_client(services) as client:
        jobs = upload_all_shuffled(client)
        drain(services)
        yield client, {table: job(client, j["job_id"]) for table, j in jobs.items()}


def test_the_sample_files_are_ingested_with_exact_counts(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]], services: Services
) -> None:
    # Given the three sample files uploaded children first, When a worker ingests them
    _, jobs = loaded

    # Then every job succeeded with counts that match the files
    assert {t: jobs[t]["status"] for t in FILES} == dict.fromkeys(FILES, "succeeded")
    counts = {
        t: (jobs[t]["rows_read"], jobs[t]["rows_inserted"], jobs[t]["rows_rejected"]) for t in FILES
    }
    assert counts == {
        "departments": (12, 12, 0),
        "jobs": (183, 183, 0),
        "hired_employees": (1999, 1929, 70),
    }
    assert (len(TRUTH.hires), len(TRUTH.rejected)) == (1929, 70)
    for t in FILES:
        size = (SAMPLE_DATA / f"{t}.csv").stat().st_size
        assert (jobs[t]["size_bytes"], jobs[t]["bytes_done"]) == (size, size)
        assert jobs[t]["original_name"] == f"{t}.csv"
    # And the tables hold exactly the valid rows, with datetimes in UTC
    assert count(services, "departments") == 12
    assert count(services, "jobs") == 183
    stored = {
        r["id"]: (r["department_id"], r["job_id"], r["datetime"])
        for r in table_rows(services, "hired_employees")
    }
    assert stored == {h.id: (h.department_id, h.job_id, h.at) for h in TRUTH.hires}


def test_the_multi_file_upload_queues_parents_before_children(
    services: Services,
) -> None:
    with api_client(services) as client:
        jobs = upload_all_shuffled(client)
        listed = client.get("/jobs").json()["items"]

    # Newest first: the child was queued last, whatever its place in the request
    assert [j["table"] for j in listed] == ["hired_employees", "jobs", "departments"]
    assert {j["status"] for j in jobs.values()} == {"queued"}


def test_every_rejected_row_is_kept_with_its_line_and_empty_column(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]],
) -> None:
    client, jobs = loaded
    job_id = jobs["hired_employees"]["job_id"]

    # When an operator pages through the rejected rows
    items: list[dict[str, Any]] = []
    totals = set()
    for offset in range(0, 100, 25):
        page = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 25, "offset": offset})
        assert page.status_code == 200
        body = page.json()
        totals.add(body["total"])
        assert (body["limit"], body["offset"]) == (25, offset)
        items.extend(body["items"])

    # Then the pages hold each rejected line once, in order, with the empty column named
    assert totals == {70}
    assert [i["line"] for i in items] == sorted(TRUTH.rejected)
    assert {i["line"]: [(e["column"], e["rule"]) for e in i["errors"]] for i in items} == {
        line: [(column, "required")] for line, column in TRUTH.rejected.items()
    }
    lines = (SAMPLE_DATA / "hired_employees.csv").read_text(encoding="utf-8").splitlines()
    assert all(i["raw"] == lines[i["line"] - 1] for i in items)


def test_rejected_rows_come_as_csv_when_asked(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]],
) -> None:
    client, jobs = loaded
    job_id = jobs["hired_employees"]["job_id"]

    response = client.get(f"/jobs/{job_id}/rejected-rows", headers={"Accept": "text/csv"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["line"]) for r in rows] == sorted(TRUTH.rejected)
    assert {int(r["line"]): (r["columns"], r["rules"]) for r in rows} == {
        line: (column, "required") for line, column in TRUTH.rejected.items()
    }
    lines = (SAMPLE_DATA / "hired_employees.csv").read_text(encoding="utf-8").splitlines()
    assert all(r["raw"] == lines[int(r["line"]) - 1] for r in rows)


def test_hires_by_quarter_match_an_independent_count(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]],
) -> None:
    client, _ = loaded

    response = client.get("/reports/hires-by-quarter", params={"year": 2021})

    assert response.status_code == 200
    body = response.json()
    assert body["year"] == 2021
    expected = expected_hires_by_quarter(2021)
    assert len(expected) > 50
    assert body["rows"] == expected


def test_departments_above_the_mean_match_an_independent_count(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]],
) -> None:
    client, _ = loaded

    response = client.get("/reports/departments-above-mean", params={"year": 2021})

    assert response.status_code == 200
    body = response.json()
    mean, rows = expected_departments_above_mean(2021)
    assert body["mean"] == pytest.approx(mean)
    assert body["rows"] == rows
    assert 0 < len(rows) < len(TRUTH.departments)


def test_departments_that_hired_nobody_count_as_zero_in_the_mean(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]],
) -> None:
    # Given three more departments that hired nobody
    client, _ = loaded
    new = [{"id": i, "department": f"New department {i}"} for i in (13, 14, 15)]
    assert client.post("/tables/departments/rows", json={"rows": new}).json()["inserted"] == 3

    # When the report is read
    body = client.get("/reports/departments-above-mean", params={"year": 2021}).json()

    # Then the mean is over fifteen departments, which lifts one more department above it
    hired = Counter(h.department_id for h in TRUTH.hires if h.at.year == 2021)
    mean = sum(hired.values()) / 15
    assert body["mean"] == pytest.approx(mean)
    above = sorted((d for d in hired if hired[d] > mean), key=lambda d: (-hired[d], d))
    assert [r["id"] for r in body["rows"]] == above
    assert len(above) == len(expected_departments_above_mean(2021)[1]) + 1


def test_a_year_without_hires_gives_empty_reports(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]],
) -> None:
    client, _ = loaded

    quarters = client.get("/reports/hires-by-quarter", params={"year": 1999}).json()
    above = client.get("/reports/departments-above-mean", params={"year": 1999}).json()

    assert quarters["rows"] == []
    assert above["rows"] == []


def test_reports_come_as_csv_when_asked(
    loaded: tuple[TestClient, dict[str, dict[str, Any]]],
) -> None:
    client, _ = loaded
    csv_accept = {"Accept": "text/csv"}

    quarters = client.get("/reports/hires-by-quarter", params={"year": 2021}, headers=csv_accept)
    above = client.get("/reports/departments-above-mean", params={"year": 2021}, headers=csv_accept)

    assert quarters.headers["content-type"].startswith("text/csv")
    assert above.headers["content-type"].startswith("text/csv")
    quarter_rows = list(csv.DictReader(io.StringIO(quarters.text)))
    assert [
        {k: (int(v) if k.startswith("Q") else v) for k, v in r.items()} for r in quarter_rows
    ] == expected_hires_by_quarter(2021)
    above_rows = list(csv.DictReader(io.StringIO(above.text)))
    assert [
        {"id": int(r["id"]), "department": r["department"], "hired": int(r["hired"])}
        for r in above_rows
    ] == expected_departments_above_mean(2021)[1]
