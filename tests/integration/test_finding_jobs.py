"""Finding jobs by the start of their id, by table, and problems worded for people."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.bootstrap import Services
from tests.support.flow import api_client
from tests.support.jobs import record_job

IDS = [
    "abcdef01-0000-4000-8000-000000000001",
    "abcdef02-0000-4000-8000-000000000002",
    "abc_ef03-0000-4000-8000-000000000003",
    "12345678-0000-4000-8000-000000000004",
]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    for job_id in IDS:
        record_job(services.jobs, job_id, size=10)
    with api_client(services) as c:
        yield c


def listed(client: TestClient, **params: object) -> list[str]:
    answer = client.get("/jobs", params=params)
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["total"] == len(page["items"])
    return sorted(j["job_id"] for j in page["items"])


def test_jobs_are_found_by_the_start_of_their_id(client: TestClient) -> None:
    assert listed(client, id_prefix="abcdef") == IDS[:2]
    assert listed(client, id_prefix="abcdef02") == [IDS[1]]
    assert listed(client, id_prefix=IDS[3]) == [IDS[3]]
    assert listed(client, id_prefix="ffffff") == []
    # LIKE's wildcards in a prefix are plain characters.
    assert listed(client, id_prefix="abc_") == [IDS[2]]
    assert listed(client, id_prefix="abc%") == []
    # The filter combines with the others.
    assert listed(client, id_prefix="abcdef", table="departments") == IDS[:2]
    assert listed(client, id_prefix="abcdef", status="failed") == []


def test_an_unknown_table_is_a_404_naming_the_tables(client: TestClient) -> None:
    answer = client.get("/jobs", params={"table": "bogus"})

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    detail = answer.json()["detail"]
    assert "'bogus'" in detail
    assert all(t in detail for t in ("departments", "jobs", "hired_employees"))


@pytest.mark.parametrize(
    ("path", "params", "sentence", "location"),
    [
        (
            "/jobs",
            {"status": "bogus"},
            "status must be 'queued', 'running', 'succeeded', 'failed' or 'cancelled', not 'bogus'",
            "query.status",
        ),
        ("/jobs", {"limit": "0"}, "limit must be at least 1, not 0", "query.limit"),
        ("/jobs", {"limit": "ten"}, "limit must be a whole number, not 'ten'", "query.limit"),
        (
            "/backups/nonexistent",
            {},
            "no backup with id 'nonexistent': backup ids are 32 hexadecimal characters",
            "path.backup_id",
        ),
        (
            "/reports/hires-by-quarter",
            {"year": "99999"},
            "year must be at most 9998, not 99999",
            "query.year",
        ),
    ],
)
def test_invalid_parameters_are_explained_in_a_sentence(
    client: TestClient, path: str, params: dict[str, str], sentence: str, location: str
) -> None:
    answer = client.get(path, params=params)

    assert answer.status_code == 422
    problem = answer.json()
    assert problem["detail"] == sentence
    # Programs still get the machine-readable list.
    assert [e["location"] for e in problem["errors"]] == [location]
