"""The reports' year and the order of names, the same on SQLite and PostgreSQL.

The order is the README's: department, then job, by name with case and accents ignored
(Unicode NFKD, combining marks dropped, case-folded), ties by the exact name's code points,
then by id. The expected orders below are written from that rule by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.bootstrap import Services
from tests.support.flow import api_client

# Departments (and jobs) as inserted: shuffled, mixed case, accents, another script, ß.
NAMES = [
    "Zürich",
    "émile",
    "Ωmega",
    "alpha",
    "Straße",
    "日本",
    "Emile",
    "Ärzte",
    "zebra",
    "Beta",
    "Strasse",
    "ångström",
    "Édouard",
    "Zeta",
]
# By hand: a-ngstrom < a-rzte; "Emile" before "émile" (E is U+0045, é U+00E9); "Strasse"
# before "Straße" (s is U+0073, ß U+00DF, both fold to "strasse"); Greek after Latin, then CJK.
ORDERED = [
    "alpha",
    "ångström",
    "Ärzte",
    "Beta",
    "Édouard",
    "Emile",
    "émile",
    "Strasse",
    "Straße",
    "zebra",
    "Zeta",
    "Zürich",
    "Ωmega",
    "日本",
]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with api_client(services) as c:
        yield c


def insert(client: TestClient, table: str, rows: list[dict[str, Any]]) -> None:
    answer = client.post(f"/tables/{table}/rows", json={"rows": rows})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["inserted"], answer.json()["rejected"]) == (len(rows), [])


def hire(i: int, at: str, department_id: int, job_id: int) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"Person {i}",
        "datetime": at,
        "department_id": department_id,
        "job_id": job_id,
    }


def test_names_are_ordered_by_the_documented_rule_on_every_database(client: TestClient) -> None:
    # Given departments and jobs named in mixed case, with accents and in other scripts, and
    # one hire for every department (with job 1) and one for every job (in department 1),
    insert(client, "departments", [{"id": i + 1, "department": n} for i, n in enumerate(NAMES)])
    insert(client, "jobs", [{"id": i + 1, "job": n} for i, n in enumerate(NAMES)])
    hires = [hire(i + 1, "2021-02-01T00:00:00Z", i + 1, 1) for i in range(len(NAMES))]
    hires += [hire(100 + i, "2021-05-01T00:00:00Z", 1, i + 1) for i in range(1, len(NAMES))]
    insert(client, "hired_employees", hires)

    # when the report is read,
    rows = client.get("/reports/hires-by-quarter", params={"year": 2021}).json()["rows"]

    # then departments come in the documented order, and the jobs of one department too.
    departments = list(dict.fromkeys(r["department"] for r in rows))
    assert departments == ORDERED
    first = NAMES[0]
    assert [r["job"] for r in rows if r["department"] == first] == ORDERED
    assert sum(r["Q1"] + r["Q2"] for r in rows) == len(hires)


def test_the_year_defaults_to_the_latest_with_hires_and_is_echoed(client: TestClient) -> None:
    # Given hires in 2019 and 2023 only,
    insert(client, "departments", [{"id": 1, "department": "Sales"}])
    insert(client, "jobs", [{"id": 1, "job": "Clerk"}])
    insert(
        client,
        "hired_employees",
        [
            hire(1, "2019-03-01T00:00:00Z", 1, 1),
            hire(2, "2023-12-31T23:59:59Z", 1, 1),
            hire(3, "2023-07-01T00:00:00Z", 1, 1),
        ],
    )

    # when the reports are asked for without a year,
    quarters = client.get("/reports/hires-by-quarter").json()
    above = client.get("/reports/departments-above-mean").json()
    as_csv = client.get("/reports/hires-by-quarter", headers={"Accept": "text/csv"})

    # then they are about 2023, and say so.
    assert quarters["year"] == 2023
    assert quarters["rows"] == [
        {"department": "Sales", "job": "Clerk", "Q1": 0, "Q2": 0, "Q3": 1, "Q4": 1}
    ]
    assert (above["year"], above["mean"]) == (2023, 2.0)
    assert 'filename="hires-by-quarter-2023.csv"' in as_csv.headers["content-disposition"]
    # A year asked for is still the one answered.
    assert (
        client.get("/reports/hires-by-quarter", params={"year": 2019}).json()["rows"][0]["Q1"] == 1
    )


def test_without_any_hire_the_year_is_the_current_one(client: TestClient) -> None:
    before = datetime.now(UTC).year
    body = client.get("/reports/departments-above-mean").json()
    assert body["year"] in (before, datetime.now(UTC).year)
    assert body["rows"] == []
