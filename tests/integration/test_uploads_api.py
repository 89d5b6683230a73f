"""Uploading CSV files over HTTP: jobs created, deduplicated, listed and looked up."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from common.bootstrap import Services
from tests.support.flow import api_client, drain, job, table_rows

DEPARTMENTS = b"1,Sales\n2,Legal\n3,Support\n"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with api_client(services) as c:
        yield c


def historic_blobs(services: Services) -> list[str]:
    return [b.name for b in services.blob.list(services.settings.blob_container_name_historic)]


def test_a_raw_csv_upload_is_accepted_as_a_queued_job(
    client: TestClient, services: Services
) -> None:
    # When a CSV body is posted for a table
    response = client.post(
        "/uploads/departments",
        content=DEPARTMENTS,
        headers={"content-type": "text/csv"},
        params={"filename": "deps.csv"},
    )

    # Then a job is queued for it, and the answer says where to follow it
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/jobs/{body['job_id']}"
    assert body["table"] == "departments"
    assert body["status"] == "queued"
    assert body["original_name"] == "deps.csv"
    assert body["size_bytes"] == len(DEPARTMENTS)
    assert body["content_sha256"] == hashlib.sha256(DEPARTMENTS).hexdigest()
    assert (body["parts"], body["rows_read"], body["rows_inserted"], body["rows_rejected"]) == (
        1,
        0,
        0,
        0,
    )
    assert body["error"] is None
    # And the file is in the blob store, byte for byte
    [name] = historic_blobs(services)
    container = services.settings.blob_container_name_historic
    assert b"".join(services.blob.read_range(container, name)) == DEPARTMENTS


def test_the_job_of_an_upload_follows_it_to_success(client: TestClient, services: Services) -> None:
    created = client.post(
        "/uploads/departments", content=DEPARTMENTS, headers={"content-type": "text/csv"}
    ).json()

    drain(services)

    done = job(client, created["job_id"])
    assert done["status"] == "succeeded"
    assert (done["rows_read"], done["rows_inserted"], done["rows_rejected"]) == (3, 3, 0)
    assert done["bytes_done"] == len(DEPARTMENTS)
    assert done["started_at"] is not None and done["finished_at"] is not None
    assert [r["department"] for r in table_rows(services, "departments")] == [
        "Sales",
        "Legal",
        "Support",
    ]


def test_an_identical_upload_returns_the_existing_job(
    client: TestClient, services: Services
) -> None:
    first = client.post(
        "/uploads/departments", content=DEPARTMENTS, headers={"content-type": "text/csv"}
    )

    again = client.post(
        "/uploads/departments", content=DEPARTMENTS, headers={"content-type": "text/csv"}
    )

    assert again.status_code == 200
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["location"] == f"/jobs/{first.json()['job_id']}"
    assert client.get("/jobs").json()["total"] == 1
    assert len(historic_blobs(services)) == 1


def test_the_same_content_for_another_table_is_a_new_job(client: TestClient) -> None:
    first = client.post(
        "/uploads/departments", content=b"1,X\n", headers={"content-type": "text/csv"}
    )

    other = client.post("/uploads/jobs", content=b"1,X\n", headers={"content-type": "text/csv"})

    assert other.status_code == 202
    assert other.json()["job_id"] != first.json()["job_id"]


def test_forcing_a_reload_creates_a_new_job(client: TestClient, services: Services) -> None:
    first = client.post(
        "/uploads/departments", content=DEPARTMENTS, headers={"content-type": "text/csv"}
    ).json()

    forced = client.post(
        "/uploads/departments",
        content=DEPARTMENTS,
        headers={"content-type": "text/csv"},
        params={"force": "true"},
    )

    assert forced.status_code == 202
    assert forced.json()["job_id"] != first["job_id"]
    assert client.get("/jobs").json()["total"] == 2
    assert len(historic_blobs(services)) == 2


def test_a_forced_reload_of_loaded_rows_rejects_them_as_duplicates(
    client: TestClient, services: Services
) -> None:
    client.post("/uploads/departments", content=DEPARTMENTS, headers={"content-type": "text/csv"})
    drain(services)

    forced = client.post(
        "/uploads/departments",
        content=DEPARTMENTS,
        headers={"content-type": "text/csv"},
        params={"force": "true"},
    ).json()
    drain(services)

    done = job(client, forced["job_id"])
    assert (done["status"], done["rows_inserted"], done["rows_rejected"]) == ("succeeded", 0, 3)
    rules = {
        item["line"]: [e["rule"] for e in item["errors"]]
        for item in client.get(f"/jobs/{forced['job_id']}/rejected-rows").json()["items"]
    }
    assert rules == {1: ["duplicate_id"], 2: ["duplicate_id"], 3: ["duplicate_id"]}


def test_an_upload_with_on_conflict_update_replaces_existing_rows(
    client: TestClient, services: Services
) -> None:
    client.post("/uploads/departments", content=DEPARTMENTS, headers={"content-type": "text/csv"})
    drain(services)

    client.post(
        "/uploads/departments",
        content=b"2,Legal Affairs\n4,Training\n",
        headers={"content-type": "text/csv"},
        params={"on_conflict": "update"},
    )
    drain(services)

    assert {r["id"]: r["department"] for r in table_rows(services, "departments")} == {
        1: "Sales",
        2: "Legal Affairs",
        3: "Support",
        4: "Training",
    }


def test_a_multipart_upload_takes_the_file_field(client: TestClient, services: Services) -> None:
    response = client.post(
        "/uploads/departments", files={"file": ("my departments.csv", DEPARTMENTS, "text/csv")}
    )

    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/jobs/{body['job_id']}"
    assert body["original_name"] == "my departments.csv"
    assert body["size_bytes"] == len(DEPARTMENTS)
    drain(services)
    assert job(client, body["job_id"])["rows_inserted"] == 3


def test_an_unknown_table_is_a_404_problem(client: TestClient, services: Services) -> None:
    response = client.post(
        "/uploads/employees", content=DEPARTMENTS, headers={"content-type": "text/csv"}
    )

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert problem["status"] == 404
    assert "employees" in problem["detail"]
    assert "hired_employees" in problem["detail"]
    assert historic_blobs(services) == []


def test_a_body_that_is_not_csv_is_a_415_problem(client: TestClient, services: Services) -> None:
    response = client.post(
        "/uploads/departments", content=b'{"id": 1}', headers={"content-type": "application/json"}
    )

    assert response.status_code == 415
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "text/csv" in response.json()["detail"]
    assert client.get("/jobs").json()["total"] == 0


def test_a_multi_file_upload_must_be_multipart(client: TestClient) -> None:
    response = client.post("/uploads", content=DEPARTMENTS, headers={"content-type": "text/csv"})

    assert response.status_code == 415
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


def test_a_multi_file_upload_refuses_a_field_that_is_not_a_table(
    client: TestClient, services: Services
) -> None:
    response = client.post(
        "/uploads",
        files=[
            ("departments", ("d.csv", DEPARTMENTS, "text/csv")),
            ("employees", ("e.csv", b"1,x\n", "text/csv")),
        ],
    )

    assert response.status_code == 422
    assert "employees" in response.json()["detail"]
    assert client.get("/jobs").json()["total"] == 0
    assert historic_blobs(services) == []


def test_jobs_are_listed_newest_first_in_pages_with_a_total(client: TestClient) -> None:
    # Given five uploads
    ids = [
        client.post(
            "/uploads/departments",
            content=f"{i},Dept {i}\n".encode(),
            headers={"content-type": "text/csv"},
        ).json()["job_id"]
        for i in range(5)
    ]

    # When they are listed two at a time
    pages = [client.get("/jobs", params={"limit": 2, "offset": o}).json() for o in (0, 2, 4)]

    # Then the pages run newest first and each knows the total
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [[j["job_id"] for j in p["items"]] for p in pages] == [
        ids[4:2:-1],
        ids[2:0:-1],
        ids[0:1],
    ]


def test_jobs_can_be_filtered_by_table_and_status(client: TestClient, services: Services) -> None:
    client.post("/uploads/departments", content=DEPARTMENTS, headers={"content-type": "text/csv"})
    drain(services)
    queued = client.post(
        "/uploads/jobs", content=b"1,Clerk\n", headers={"content-type": "text/csv"}
    ).json()

    by_table = client.get("/jobs", params={"table": "jobs"}).json()
    by_status = client.get("/jobs", params={"status": "queued"}).json()

    assert [j["job_id"] for j in by_table["items"]] == [queued["job_id"]]
    assert [j["job_id"] for j in by_status["items"]] == [queued["job_id"]]
    assert by_status["total"] == 1


@pytest.mark.parametrize("path", ["/jobs/no-such-job", "/jobs/no-such-job/rejected-rows"])
def test_an_unknown_job_is_a_404_problem(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "no-such-job" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}])
def test_paging_outside_its_limits_is_a_422_problem(
    client: TestClient, params: dict[str, int]
) -> None:
    response = client.get("/jobs", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


def test_an_empty_file_succeeds_having_read_nothing(client: TestClient, services: Services) -> None:
    created = client.post("/uploads/departments", content=b"", headers={"content-type": "text/csv"})
    assert created.status_code == 202

    drain(services)

    done = job(client, created.json()["job_id"])
    assert (done["status"], done["rows_read"], done["rows_rejected"]) == ("succeeded", 0, 0)
    assert client.get(f"/jobs/{done['job_id']}/rejected-rows").json()["total"] == 0
    assert done["warnings"] == ["the file is empty"]


@pytest.mark.parametrize(
    ("first_line", "warned"),
    [
        (b"id,department", True),
        (b'"ID", "Department"', True),
        (b"\xef\xbb\xbfid,department", True),
        (b"x,Sales", False),  # rejected, but not a header
        (b"id,department,extra", False),
    ],
)
def test_a_first_line_that_names_the_columns_is_rejected_with_a_warning(
    client: TestClient, services: Services, first_line: bytes, warned: bool
) -> None:
    created = client.post(
        "/uploads/departments",
        content=first_line + b"\n1,Sales\n2,Legal\n",
        headers={"content-type": "text/csv"},
    )
    drain(services)

    done = job(client, created.json()["job_id"])
    assert (done["status"], done["rows_inserted"], done["rows_rejected"]) == ("succeeded", 2, 1)
    if warned:
        assert done["warnings"] == [
            "line 1 looks like a header row; it was rejected (the files have no header)"
        ]
    else:
        assert done["warnings"] == []


def test_a_file_that_is_not_utf8_text_fails_its_job_with_a_readable_error(
    client: TestClient, services: Services
) -> None:
    utf16 = "1,Sales\n2,Legal\n".encode("utf-16")

    created = client.post(
        "/uploads/departments", content=utf16, headers={"content-type": "text/csv"}
    )
    drain(services)

    failed = job(client, created.json()["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("NotText")
    assert "UTF-16" in failed["error"]
    [letter] = client.get("/dead-letters").json()["items"]
    assert (letter["reason"], letter["job_id"]) == ("NotText", failed["job_id"])
    assert table_rows(services, "departments") == []
