"""Load options, as BigQuery load jobs and Snowflake COPY have them: bad-row thresholds,
all-or-nothing loads, replace and empty-only writes, dry runs and header rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from common.bootstrap import Services
from common.sql.catalog_tables import staging_tables
from common.usecases.publish import Publisher
from common.usecases.retention import Retention, RetentionPolicy
from tests.support.faults import HookedParts
from tests.support.flow import api_client, drain, service_set, table_ids, table_rows
from tests.support.reconciling import reconciler
from worker.main import build_consumer

# About 60 bytes a line: 40 lines make a file of three parts.
GOOD = [f"{i},Department {i} of a catalogue with rather long names" for i in range(1, 41)]


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    # Small blocks and parts: a file of a few kilobytes has several of each.
    with service_set(tmp_path, database_url, block_bytes=1024, part_bytes=1024) as built:
        built.parts = HookedParts(built.parts)
        yield built


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with api_client(services) as c:
        yield c


def body(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def submit(client: TestClient, table: str, data: bytes, **options: Any) -> str:
    answer = client.post(
        f"/uploads/{table}", content=data, headers={"content-type": "text/csv"}, params=options
    )
    assert answer.status_code in (200, 202), answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


def load(
    client: TestClient, services: Services, table: str, data: bytes, **options: Any
) -> dict[str, Any]:
    job_id = submit(client, table, data, **options)
    drain(services)
    job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
    return job


def step(services: Services) -> int:
    """Let one worker take one message; how many it processed."""
    return build_consumer(services, threading.Event()).run_once()


def rejected_rules(client: TestClient, job_id: str) -> dict[int, list[str]]:
    page = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 1000}).json()
    return {r["line"]: [f"{e['column']}:{e['rule']}" for e in r["errors"]] for r in page["items"]}


def staged_rows(services: Services) -> int:
    with services.db.read() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in staging_tables()
        )


# --- atomic ---------------------------------------------------------------------------------


def test_an_atomic_load_shows_nothing_until_every_part_is_staged_then_everything(
    client: TestClient, services: Services
) -> None:
    seen_while_staging: list[int] = []
    hooked = services.parts
    assert isinstance(hooked, HookedParts)
    hooked.after_advance = lambda _n: seen_while_staging.append(
        len(table_ids(services, "departments"))
    )
    data = body(*GOOD[:20], "x,bad", *GOOD[20:], "5,Again")

    job = load(client, services, "departments", data, atomic="true")

    assert job["parts"] > 1 and set(seen_while_staging) == {0}
    assert (job["status"], job["rows_read"], job["rows_inserted"], job["rows_rejected"]) == (
        "succeeded",
        42,
        40,
        2,
    )
    assert job["options"] == {"atomic": True}
    assert rejected_rules(client, job["job_id"]) == {
        21: ["id:not_integer"],
        42: ["id:duplicate_id"],
    }
    assert table_ids(services, "departments") == list(range(1, 41))
    assert staged_rows(services) == 0


def test_staged_rows_are_checked_again_when_published(
    client: TestClient, services: Services
) -> None:
    # Given an atomic load whose first part is staged
    job_id = submit(client, "departments", body(*GOOD), atomic="true")
    assert step(services) == 1 and staged_rows(services) > 0
    # When another writer inserts one of its ids meanwhile
    rows = [{"id": 3, "department": "Meanwhile"}]
    assert client.post("/tables/departments/rows", json={"rows": rows}).status_code == 200
    drain(services)

    # Then the published rows skip the id taken meanwhile, rejected as a duplicate
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["rows_inserted"], job["rows_rejected"]) == (39, 1)
    assert rejected_rules(client, job_id) == {3: ["id:duplicate_id"]}


def test_an_atomic_load_whose_staged_rows_were_lost_is_staged_again_never_published_in_part(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an atomic load of several parts, whose staged rows vanish just before it is
    # published (as a PostgreSQL server's restart empties its UNLOGGED staging tables)
    publish = Publisher.publish

    def after_a_restart(self: Publisher, job: Any) -> Any:
        monkeypatch.setattr(Publisher, "publish", publish)
        with services.db.write() as conn:
            for table in staging_tables():
                conn.execute(table.delete())
        return publish(self, job)

    monkeypatch.setattr(Publisher, "publish", after_a_restart)
    data = body(*GOOD[:20], "x,bad", *GOOD[20:])
    job_id = load(client, services, "departments", data, atomic="true")["job_id"]

    # Then nothing is published, and every part is to be staged again, from its start
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["rows_read"], job["rows_rejected"]) == ("running", 0, 0)
    assert table_ids(services, "departments") == []
    # and once the reconciliation sends the parts again, the whole file is published once.
    assert len(reconciler(services, quiet_seconds=0).run().resent) == job["parts"] > 1
    drain(services)
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["status"], job["rows_read"], job["rows_inserted"], job["rows_rejected"]) == (
        "succeeded",
        41,
        40,
        1,
    )
    assert rejected_rules(client, job_id) == {21: ["id:not_integer"]}
    assert table_ids(services, "departments") == list(range(1, 41))


# --- thresholds -----------------------------------------------------------------------------


def test_too_many_bad_records_fails_the_job_and_leaves_the_table_untouched(
    client: TestClient, services: Services
) -> None:
    # The only bad lines are in the last part of the file.
    data = body(*GOOD, "x,bad", "y,bad")

    job = load(client, services, "departments", data, max_bad_records=1)

    assert job["parts"] > 1
    assert job["status"] == "failed"
    assert job["error"].startswith("too_many_bad_records")
    assert set(rejected_rules(client, job["job_id"])) == {41, 42}
    assert table_ids(services, "departments") == []
    assert staged_rows(services) == 0


def test_a_share_of_bad_rows_under_the_limit_loads_and_over_it_fails(
    client: TestClient, services: Services
) -> None:
    data = body(*GOOD[:19], "x,bad")  # 1 of 20 lines: 5 %

    over = load(client, services, "departments", data, max_bad_percent=4)
    under = load(client, services, "departments", data, max_bad_percent=5)

    assert over["status"] == "failed" and "5.00% of the 20 rows" in over["error"]
    assert (under["status"], under["rows_inserted"]) == ("succeeded", 19)


def test_the_threshold_counts_rows_rejected_at_publish_too(
    client: TestClient, services: Services
) -> None:
    # 1, 2 and 3 exist already: only at publish do they show up as duplicates.
    client.post(
        "/tables/departments/rows", json={"rows": [{"id": i, "department": "x"} for i in (1, 2, 3)]}
    )

    job = load(client, services, "departments", body(*GOOD), max_bad_records=2)

    assert job["status"] == "failed" and "3 rows were rejected" in job["error"]
    assert table_ids(services, "departments") == [1, 2, 3]


# --- write modes ----------------------------------------------------------------------------


def test_write_empty_loads_only_into_an_empty_table(client: TestClient, services: Services) -> None:
    first = load(client, services, "departments", body(*GOOD[:5]), write="empty")
    second = load(client, services, "departments", body(*GOOD[5:10]), write="empty")

    assert (first["status"], first["rows_inserted"]) == ("succeeded", 5)
    assert second["status"] == "failed" and second["error"].startswith("table_not_empty")
    assert table_ids(services, "departments") == [1, 2, 3, 4, 5]


def test_write_replace_makes_the_table_exactly_the_files_rows(
    client: TestClient, services: Services
) -> None:
    load(client, services, "departments", body(*GOOD[:10]))

    job = load(
        client, services, "departments", body("7,Seven", "50,Fifty", "x,bad"), write="replace"
    )

    assert (job["status"], job["rows_inserted"], job["rows_rejected"]) == ("succeeded", 2, 1)
    assert table_ids(services, "departments") == [7, 50]


def test_a_replace_that_would_orphan_rows_elsewhere_changes_nothing(
    client: TestClient, services: Services
) -> None:
    load(client, services, "departments", body(*GOOD[:3]))
    load(client, services, "jobs", body("1,Engineer"))
    load(client, services, "hired_employees", body("1,Ann,2021-01-01T00:00:00Z,2,1"))

    job = load(client, services, "departments", body("1,Only one"), write="replace")

    assert job["status"] == "failed"
    assert job["error"].startswith("referenced_rows_missing")
    assert "1 hired_employees rows whose department_id" in job["error"]
    assert table_ids(services, "departments") == [1, 2, 3]


def test_replace_and_on_conflict_update_together_are_refused(client: TestClient) -> None:
    answer = client.post(
        "/uploads/departments",
        content=body(*GOOD),
        headers={"content-type": "text/csv"},
        params={"write": "replace", "on_conflict": "update"},
    )
    assert answer.status_code == 422
    assert "on_conflict=update" in answer.json()["detail"]


def test_an_atomic_load_with_on_conflict_update_counts_what_it_replaced(
    client: TestClient, services: Services
) -> None:
    load(client, services, "departments", body(*GOOD[:5]))

    job = load(
        client,
        services,
        "departments",
        body("4,Four again", "5,Five again", "6,Six"),
        atomic="true",
        on_conflict="update",
    )

    assert (job["rows_inserted"], job["rows_updated"]) == (1, 2)
    assert table_ids(services, "departments") == [1, 2, 3, 4, 5, 6]


# --- dry runs and header rows ---------------------------------------------------------------


def test_a_dry_run_writes_nothing_and_stores_every_rejection(
    client: TestClient, services: Services
) -> None:
    load(client, services, "departments", body(*GOOD[:2]))

    job = load(
        client,
        services,
        "hired_employees",
        body(
            "1,Ann,2021-01-01T00:00:00Z,1,1", "2,Bo,not a date,1,1", "1,Cy,2021-01-01T00:00:00Z,2,1"
        ),
        dry_run="true",
    )

    assert job["dry_run"] is True and job["status"] == "succeeded"
    listed = client.get("/jobs", params={"table": "hired_employees"}).json()["items"]
    assert [(j["dry_run"], j["options"]) for j in listed] == [(True, {"dry_run": True})]
    assert (job["rows_inserted"], job["rows_rejected"]) == (0, 3)
    assert rejected_rules(client, job["job_id"]) == {
        1: ["job_id:unknown_reference"],
        2: ["datetime:not_iso8601"],
        3: ["id:duplicate_id"],
    }
    assert table_ids(services, "hired_employees") == []
    assert staged_rows(services) == 0


def test_leading_rows_are_skipped_and_line_numbers_still_count_them(
    client: TestClient, services: Services
) -> None:
    job = load(
        client,
        services,
        "departments",
        body("id,department", "# exported 2024", "1,Sales", "x,bad"),
        skip_leading_rows=2,
    )

    assert (job["rows_read"], job["rows_inserted"], job["rows_rejected"]) == (2, 1, 1)
    assert rejected_rules(client, job["job_id"]) == {4: ["id:not_integer"]}
    assert job["warnings"] == []


# --- quoted newlines ------------------------------------------------------------------------


def quoted_name(i: int) -> tuple[str, str]:
    """A department's field as written in the file, and the name it stands for."""
    return [
        (
            f'"Department {i}\nwhose name goes on\non more lines than one"',
            f"Department {i}\nwhose name goes on\non more lines than one",
        ),
        (f'"Department {i}\r\nwritten on Windows"', f"Department {i}\r\nwritten on Windows"),
        (
            f'"Department ""{i}""\n\nafter an empty line"',
            f'Department "{i}"\n\nafter an empty line',
        ),
        (
            f"Department {i} of a catalogue with rather long names",
            f"Department {i} of a catalogue with rather long names",
        ),
    ][i % 4]


def test_quoted_fields_spanning_lines_load_in_parallel_parts_with_first_line_numbers(
    client: TestClient, services: Services
) -> None:
    # Given a file of records whose quoted names span lines (LF, CRLF, doubled quotes, an
    # empty line), with a bad id in the middle and a quote left open at the very end
    records = [f"{i},{quoted_name(i)[0]}" for i in range(1, 61)]
    records.insert(30, 'x,"Bad id\non a record of two lines"')
    records.append('99,"Never closed\n100,Lost')
    data = body(*records)
    first_lines = [1]
    for record in records[:-1]:
        first_lines.append(first_lines[-1] + record.count("\n") + 1)

    # When it is uploaded with quoted newlines allowed
    job = load(client, services, "departments", data, allow_quoted_newlines="true")

    # Then it was cut into several parts, and every record loaded whole with its line breaks
    assert job["parts"] > 2
    assert (job["status"], job["rows_read"], job["rows_inserted"], job["rows_rejected"]) == (
        "succeeded",
        62,
        60,
        2,
    )
    assert job["options"] == {"allow_quoted_newlines": True}
    rows = {row["id"]: row["department"] for row in table_rows(services, "departments")}
    assert rows == {i: quoted_name(i)[1] for i in range(1, 61)}
    # And each rejection carries its record's first line and the whole record
    assert rejected_rules(client, job["job_id"]) == {
        first_lines[30]: ["id:not_integer"],
        first_lines[-1]: ["row:quoting"],
    }
    page = client.get(f"/jobs/{job['job_id']}/rejected-rows").json()
    assert [r["raw"] for r in page["items"]] == [records[30], records[-1]]


def test_without_quoted_newlines_a_quote_unbalanced_line_is_rejected_on_its_own(
    client: TestClient, services: Services
) -> None:
    data = body("1,Sales", '2,"Legal', 'and Compliance"', "3,Support")

    job = load(client, services, "departments", data)

    assert rejected_rules(client, job["job_id"]) == {2: ["row:quoting"], 3: ["row:field_count"]}
    assert table_ids(services, "departments") == [1, 3]


# --- several files at once ------------------------------------------------------------------


def test_files_uploaded_together_atomically_publish_together_parents_first(
    client: TestClient, services: Services
) -> None:
    files = {
        "hired_employees": (
            "h.csv",
            body("1,Ann,2021-01-01T00:00:00Z,1,1", "2,Bo,2021-01-01T00:00:00Z,9,1"),
        ),
        "departments": ("d.csv", body("1,Sales")),
        "jobs": ("j.csv", body("1,Engineer")),
    }

    answer = client.post("/uploads", files=files, params={"atomic": "true"})
    drain(services)

    jobs = {j["table"]: client.get(f"/jobs/{j['job_id']}").json() for j in answer.json()["jobs"]}
    assert {t: j["status"] for t, j in jobs.items()} == dict.fromkeys(jobs, "succeeded")
    assert jobs["hired_employees"]["rows_inserted"] == 1  # department 1 came with it
    assert rejected_rules(client, jobs["hired_employees"]["job_id"]) == {
        2: ["department_id:unknown_reference"]
    }


def test_a_failing_file_fails_the_whole_atomic_upload(
    client: TestClient, services: Services
) -> None:
    files = {
        "departments": ("d.csv", body("1,Sales")),
        "jobs": ("j.csv", body("x,bad", "y,bad")),
    }

    answer = client.post("/uploads", files=files, params={"max_bad_records": 1})
    drain(services)

    statuses = [client.get(f"/jobs/{j['job_id']}").json()["status"] for j in answer.json()["jobs"]]
    assert statuses == ["failed", "failed"]
    assert table_ids(services, "departments") == []


# --- options are part of what a job is ------------------------------------------------------


def test_the_same_file_with_other_options_is_another_job(client: TestClient) -> None:
    data = body(*GOOD[:3])
    post = lambda **p: client.post(  # noqa: E731
        "/uploads/departments", content=data, headers={"content-type": "text/csv"}, params=p
    ).json()["job_id"]

    assert post() == post()
    assert post(atomic="true") != post()
    assert post(atomic="true") == post(atomic="true")


def test_a_cancelled_staged_load_leaves_no_staged_rows(
    client: TestClient, services: Services
) -> None:
    job_id = submit(client, "departments", body(*GOOD), atomic="true")
    assert step(services) == 1 and staged_rows(services) > 0

    assert client.post(f"/jobs/{job_id}/cancel").status_code == 200
    drain(services)

    assert client.get(f"/jobs/{job_id}").json()["status"] == "cancelled"
    assert staged_rows(services) == 0
    assert table_ids(services, "departments") == []


def test_staged_rows_left_by_a_publisher_stopped_after_publishing_are_swept(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a published atomic load whose worker stopped before dropping its staged rows
    monkeypatch.setattr(Publisher, "_discard_staged", lambda _self, _group: None)
    job = load(client, services, "departments", body(*GOOD), atomic="true")
    assert job["status"] == "succeeded" and staged_rows(services) == 40
    # and another atomic load of several parts, its first part staged
    jobs = [line.replace("Department", "Job") for line in GOOD]
    waiting = submit(client, "jobs", body(*jobs), atomic="true")
    assert step(services) == 1
    staging = staged_rows(services) - 40
    assert 0 < staging < 40

    # When the retention pass runs
    removed = Retention(
        services.db, services.jobs, services.uploads, "test", RetentionPolicy()
    ).run()

    # Then the finished job's staged rows are gone and its rows stay; the other load's are
    # kept, and it publishes all of its rows
    assert removed.staged_rows == 40
    assert staged_rows(services) == staging
    assert table_ids(services, "departments") == list(range(1, 41))
    drain(services)
    assert client.get(f"/jobs/{waiting}").json()["rows_inserted"] == 40
    assert table_ids(services, "jobs") == list(range(1, 41))
