"""Retrying a job's rejected rows once the tables have what they lacked: a new job, linked to
the first, that loads the rows valid now and keeps the others' original line numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.bootstrap import Services
from common.usecases import retry_rejected
from tests.support.flow import (
    api_client,
    drain,
    job,
    service_set,
    stored_rejections,
    table_ids,
    upload,
)

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def services(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    # Small parts and blocks: the file and its retry both have several of each.
    monkeypatch.setattr(retry_rejected, "LINES_PER_BLOCK", 4)
    with service_set(tmp_path, database_url, block_bytes=1024, part_bytes=1024) as built:
        yield built


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with api_client(services) as c:
        yield c


def hire(ident: int, department: int, name: str | None = None) -> bytes:
    return b"%d,%s,2021-07-27T16:02:08Z,%d,1\n" % (
        ident,
        (name if name is not None else f"Person number {ident}").encode(),
        department,
    )


def rejected_lines(client: TestClient, job_id: str) -> dict[int, list[str]]:
    page = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 1000}).json()
    return {r["line"]: [f"{e['column']}:{e['rule']}" for e in r["errors"]] for r in page["items"]}


def retry(client: TestClient, job_id: str) -> Any:
    return client.post(f"/jobs/{job_id}/retry-rejected")


def loaded(client: TestClient, services: Services, table: str, data: bytes) -> dict[str, Any]:
    job_id = upload(client, table, data)["job_id"]
    drain(services)
    return job(client, job_id)


def test_rows_rejected_for_a_missing_department_load_once_it_exists(
    client: TestClient, services: Services
) -> None:
    # Given departments 1 and 2, and hires (in several parts) of which those of department 3
    # and 4 are rejected, one has no name and one line is not UTF-8
    loaded(client, services, "departments", b"1,Sales\n2,Support\n")
    loaded(client, services, "jobs", b"1,Clerk\n")
    lines = [hire(i, department=(i % 4) + 1) for i in range(1, 61)]
    lines[9] = hire(10, department=3, name="")
    lines[19] = b"20,Caf\xe9 owner,2021-07-27T16:02:08Z,3,1\n"
    first = loaded(client, services, "hired_employees", b"".join(lines))
    assert first["parts"] > 1
    before = rejected_lines(client, first["job_id"])
    missing = [i for i in range(1, 61) if (i % 4) + 1 in (3, 4) and i not in (10, 20)]
    assert sorted(before) == sorted([*missing, 10, 20])

    # When department 3 is loaded and the job's rejected rows are retried
    loaded(client, services, "departments", b"3,Legal\n")
    answer = retry(client, first["job_id"])

    # Then the answer is a new job, queued and linked to the first, with the skipped line told
    assert answer.status_code == 202, answer.text
    second = answer.json()
    assert answer.headers["location"] == f"/jobs/{second['job_id']}"
    assert (second["retry_of"], second["status"], second["table"]) == (
        first["job_id"],
        "queued",
        "hired_employees",
    )
    assert second["warnings"] == [
        f"1 rejected row(s) of job {first['job_id']} were not retried: their line was not kept "
        "as it was (not UTF-8, or too long)"
    ]
    assert job(client, first["job_id"])["retried_by"] == [second["job_id"]]

    # And once the workers ran it, the rows of department 3 are in
    drain(services)
    done = job(client, second["job_id"])
    now_in = [i for i in missing if (i % 4) + 1 == 3]
    still_out = [i for i in missing if (i % 4) + 1 == 4]
    assert (done["status"], done["rows_read"]) == ("succeeded", len(missing) + 1)
    assert (done["rows_inserted"], done["rows_rejected"]) == (len(now_in), len(still_out) + 1)
    assert table_ids(services, "hired_employees") == sorted(
        [i for i in range(1, 61) if (i % 4) + 1 in (1, 2) and i not in (10, 20)] + now_in
    )
    # And the rows still rejected keep their original lines, told as before
    assert rejected_lines(client, second["job_id"]) == {
        line: before[line] for line in [*still_out, 10]
    }
    # And the first job keeps its rejections
    assert rejected_lines(client, first["job_id"]) == before


def test_a_retry_keeps_the_first_jobs_on_conflict_rule(
    client: TestClient, services: Services
) -> None:
    # Given an upload with on_conflict=update whose row of department 2 was rejected
    loaded(client, services, "departments", b"1,Sales\n")
    loaded(client, services, "jobs", b"1,Clerk\n")
    job_id = upload(client, "hired_employees", hire(1, 1) + hire(2, 2), on_conflict="update")[
        "job_id"
    ]
    drain(services)

    # When department 2 arrives and the rejected row is retried
    loaded(client, services, "departments", b"2,Support\n")
    second = retry(client, job_id).json()
    drain(services)

    # Then the retry updates as the first job did, and inserts the row
    assert second["on_conflict"] == "update"
    assert job(client, second["job_id"])["rows_inserted"] == 1
    assert table_ids(services, "hired_employees") == [1, 2]


def test_a_retry_of_an_all_or_nothing_upload_is_all_or_nothing_too(
    client: TestClient, services: Services
) -> None:
    # Given an atomic upload whose rows of department 2 were rejected when it was published
    loaded(client, services, "departments", b"1,Sales\n")
    loaded(client, services, "jobs", b"1,Clerk\n")
    data = b"".join(hire(i, department=1 + i % 2) for i in range(1, 41))
    job_id = upload(client, "hired_employees", data, atomic="true")["job_id"]
    drain(services)
    assert job(client, job_id)["rows_rejected"] == 20

    # When department 2 arrives and the rejected rows are retried
    loaded(client, services, "departments", b"2,Support\n")
    second = retry(client, job_id).json()
    drain(services)

    # Then the retry is atomic as well, and published every row
    done = job(client, second["job_id"])
    assert done["options"] == {"atomic": True}
    assert (done["status"], done["rows_inserted"], done["rows_rejected"]) == ("succeeded", 20, 0)
    assert table_ids(services, "hired_employees") == list(range(1, 41))


def test_what_a_retry_still_rejects_is_retried_by_retrying_the_retry(
    client: TestClient, services: Services
) -> None:
    # Given hires of departments 1, 2 and 3 of which only department 1 exists, retried once
    # department 2 was loaded
    loaded(client, services, "departments", b"1,Sales\n")
    loaded(client, services, "jobs", b"1,Clerk\n")
    first = loaded(
        client, services, "hired_employees", b"".join(hire(i, 1 + i % 3) for i in range(1, 31))
    )
    loaded(client, services, "departments", b"2,Support\n")
    second = retry(client, first["job_id"]).json()["job_id"]
    drain(services)

    # When department 3 is loaded and the retry is retried in turn
    loaded(client, services, "departments", b"3,Legal\n")
    third = retry(client, second).json()
    drain(services)

    # Then every row is in, each retry linked to the one before
    assert third["retry_of"] == second
    assert job(client, second)["retried_by"] == [third["job_id"]]
    assert (
        job(client, second)["rows_inserted"],
        job(client, third["job_id"])["rows_inserted"],
    ) == (
        10,
        10,
    )
    assert table_ids(services, "hired_employees") == list(range(1, 31))


def test_deleting_a_retry_keeps_the_first_job_and_its_file(
    client: TestClient, services: Services
) -> None:
    # Given a finished retry of a job's rejected rows
    first = loaded(client, services, "departments", b"1,Sales\n1,Again\n")["job_id"]
    second = retry(client, first).json()["job_id"]
    drain(services)
    files = [info.name for info in services.uploads.all()]

    # When the retry is deleted
    assert client.delete(f"/jobs/{second}").status_code == 204

    # Then the first job keeps its file and its rejections
    assert [info.name for info in services.uploads.all()] == files
    assert stored_rejections(services, first) == [(2, "1,Again")]
    assert job(client, first)["retried_by"] == []


def test_a_retry_whose_first_job_was_deleted_fails_saying_so(
    client: TestClient, services: Services
) -> None:
    # Given a retry still queued when its first job is deleted
    first = loaded(client, services, "departments", b"1,Sales\n1,Again\n")["job_id"]
    second = retry(client, first).json()["job_id"]
    assert client.delete(f"/jobs/{first}").status_code == 204

    # When the workers take the retry
    drain(services)

    # Then it fails, naming the job it could not read
    failed = job(client, second)
    assert failed["status"] == "failed"
    assert f"job {first}, whose rejected rows" in failed["error"]


def test_an_unknown_job_is_a_404_problem(client: TestClient) -> None:
    answer = retry(client, "0f0f0f0f-0000-0000-0000-000000000000")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)


def test_an_unfinished_job_is_a_409_problem(client: TestClient, services: Services) -> None:
    # Given an upload that no worker has taken yet
    job_id = upload(client, "departments", b"1,Sales\n0,Nobody\n")["job_id"]

    # When its rejected rows are retried
    answer = retry(client, job_id)

    # Then it is refused, saying why, and no job is made
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert "once it has finished" in answer.json()["detail"]
    assert client.get("/jobs").json()["total"] == 1


@pytest.mark.parametrize(
    "data",
    [b"1,Sales\n", b"1,Sales\n2,Caf\xe9\n"],
    ids=["no-rejection", "only-a-line-not-kept"],
)
def test_a_job_without_a_rejected_row_to_retry_is_a_409_problem(
    client: TestClient, services: Services, data: bytes
) -> None:
    job_id = loaded(client, services, "departments", data)["job_id"]

    answer = retry(client, job_id)

    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert "no rejected row to retry" in answer.json()["detail"]
    assert client.get("/jobs").json()["total"] == 1


def test_retrying_needs_a_write_key(tmp_path: Path, database_url: str) -> None:
    # Given a finished job with a rejected row, on a service with keys
    keys = "reader-key-0123456789=read,writer-key-0123456789=write"
    writer = {"X-API-Key": "writer-key-0123456789"}
    reader = {"X-API-Key": "reader-key-0123456789"}
    with (
        service_set(tmp_path, database_url, api_keys=keys) as services,
        api_client(services) as client,
    ):
        job_id = client.post(
            "/uploads/departments",
            content=b"1,Sales\n1,Again\n",
            headers={"content-type": "text/csv", **writer},
        ).json()["job_id"]
        drain(services)

        # When a reader, then a writer, retry its rejected rows
        refused = client.post(f"/jobs/{job_id}/retry-rejected", headers=reader)
        accepted = client.post(f"/jobs/{job_id}/retry-rejected", headers=writer)

        # Then the reader is refused and the writer gets a new job
        assert refused.status_code == 403
        assert accepted.status_code == 202
        assert stored_rejections(services, job_id) == [(2, "1,Again")]


def test_records_spanning_lines_are_retried_whole_under_their_first_line(
    client: TestClient, services: Services
) -> None:
    # Given hires uploaded with quoted newlines: a name over two lines and a plain row for a
    # missing department, a valid row, and a quote never closed that runs to the end
    loaded(client, services, "departments", b"1,Sales\n")
    loaded(client, services, "jobs", b"1,Clerk\n")
    data = (
        b'1,"Ann\nSmith",2021-07-27T16:02:08Z,9,1\n'
        b"2,Bob,2021-07-27T16:02:08Z,9,1\n"
        b"3,Cy,2021-07-27T16:02:08Z,1,1\n"
        b'4,"Dee,2021-07-27T16:02:08Z,9,1\n'
        b"5,Eve,2021-07-27T16:02:08Z,9,1\n"
    )
    first_id = client.post(
        "/uploads/hired_employees",
        content=data,
        headers={"content-type": "text/csv"},
        params={"allow_quoted_newlines": "true"},
    ).json()["job_id"]
    drain(services)
    assert sorted(rejected_lines(client, first_id)) == [1, 3, 5]

    # When department 9 exists and the rejected rows are retried
    loaded(client, services, "departments", b"9,Research\n")
    again = retry(client, first_id)
    assert again.status_code == 202, again.text
    drain(services)

    # Then the record of two lines and the plain row load, and the open quote is rejected
    # again on its first line, without swallowing anything
    second = job(client, again.json()["job_id"])
    assert (second["status"], second["rows_inserted"], second["rows_rejected"]) == (
        "succeeded",
        2,
        1,
    )
    assert second["options"].get("allow_quoted_newlines") is True
    assert rejected_lines(client, second["job_id"]) == {5: ["row:quoting"]}
    assert table_ids(services, "hired_employees") == [1, 2, 3]
