"""The reports' summary equals a recount after every write path, on SQLite and PostgreSQL.

The recount here is the test's own: every row of hired_employees read back and counted in
Python by (year, quarter, department, job), independently of the SQL that the service uses to
count. After each write, the summary (base plus changes) must equal it, the service's own
check must agree, and the report must read the same counts, before and after a fold.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select

from common.bootstrap import Services
from common.sql.catalog_tables import data_table
from common.sql.schema import hire_count_changes, hire_counts
from common.stores import hire_counts as summary
from common.stores.reports import hires_by_quarter
from common.usecases.ingest_part import Interrupted
from common.usecases.summary import SummaryFold, check_summary, fold_changes
from tests.support.faults import HookedParts
from tests.support.flow import api_client, drain, job, service_set, upload

Key = tuple[int, int, int, int]
DEPARTMENTS = 4
JOBS = 3


def recounted(services: Services) -> dict[Key, int]:
    """Hires by key, from the rows themselves."""
    hired = data_table("hired_employees")
    with services.db.read() as conn:
        rows = conn.execute(select(hired.c.datetime, hired.c.department_id, hired.c.job_id))
        return dict(
            Counter(
                (at.year, (at.month - 1) // 3 + 1, int(department), int(job))
                for at, department, job in rows
            )
        )


def assert_exact(services: Services) -> dict[Key, int]:
    expected = recounted(services)
    with services.db.read() as conn:
        held = summary.totals(conn)
    assert held == expected
    check = check_summary(services.db)
    assert (check.matches, check.hires) == (True, sum(expected.values()))
    for year in {k[0] for k in expected}:
        rows = hires_by_quarter(services.db, year)
        assert sum(r.Q1 + r.Q2 + r.Q3 + r.Q4 for r in rows) == sum(
            n for k, n in expected.items() if k[0] == year
        )
    return expected


def hire_line(i: int, rng: random.Random) -> str:
    year = rng.choice((2020, 2021))
    return (
        f"{i},Person {i},{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00Z,"
        f"{rng.randint(1, DEPARTMENTS)},{rng.randint(1, JOBS)}"
    )


def hires_csv(ids: range | list[int], seed: int) -> bytes:
    rng = random.Random(seed)
    return ("\n".join(hire_line(i, rng) for i in ids) + "\n").encode()


def hire(i: int, at: str, department_id: int, job_id: int) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"P{i}",
        "datetime": at,
        "department_id": department_id,
        "job_id": job_id,
    }


@pytest.fixture
def loaded(tmp_path: Path, database_url: str) -> Iterator[tuple[Services, TestClient]]:
    with (
        service_set(tmp_path, database_url, block_bytes=1024, part_bytes=4096) as services,
        api_client(services) as client,
    ):
        for table, count, name in (
            ("departments", DEPARTMENTS, "department"),
            ("jobs", JOBS, "job"),
        ):
            rows = [{"id": i, name: f"{name} {i}"} for i in range(1, count + 1)]
            assert client.post(f"/tables/{table}/rows", json={"rows": rows}).status_code == 200
        yield services, client


def load(services: Services, client: TestClient, data: bytes, **params: Any) -> dict[str, Any]:
    submitted = upload(client, "hired_employees", data, **params)
    drain(services)
    return job(client, submitted["job_id"])


def test_each_write_path_keeps_the_summary_equal_to_a_recount(
    loaded: tuple[Services, TestClient],
) -> None:
    services, client = loaded
    # Given an upload of several parts and blocks (and a row refused for its department),
    done = load(services, client, hires_csv(range(1, 301), 1) + b"999,X,2021-01-01T00:00:00Z,9,1\n")
    assert (done["status"], done["rows_inserted"], done["rows_rejected"]) == ("succeeded", 300, 1)
    assert_exact(services)

    # when JSON batches insert rows, then move rows across department, job, quarter and year,
    batch = [hire(1000 + i, "2021-02-03T00:00:00Z", 1, 1) for i in range(20)]
    assert client.post("/tables/hired_employees/rows", json={"rows": batch}).status_code == 200
    assert_exact(services)
    moved = [hire(i, "2020-11-30T23:59:59Z", 2, 3) for i in range(1, 40)]
    answer = client.post("/tables/hired_employees/rows?on_conflict=update", json={"rows": moved})
    assert answer.json()["updated"] == 39
    assert_exact(services)

    # an upload replaces rows (deleted, then inserted again, some where they were),
    done = load(services, client, hires_csv(range(150, 450), 2), on_conflict="update")
    assert (done["rows_inserted"], done["rows_updated"]) == (149, 151)
    assert_exact(services)

    # the counts are folded into their base,
    assert fold_changes(services.db) > 0
    with services.db.read() as conn:
        assert conn.execute(select(hire_count_changes)).first() is None
    before_backup = assert_exact(services)
    backup = client.post("/backups/hired_employees").json()

    # staged loads publish, replacing rows and then the whole table,
    done = load(
        services, client, hires_csv(range(400, 500), 3), atomic="true", on_conflict="update"
    )
    assert (done["status"], done["rows_updated"]) == ("succeeded", 50)
    assert_exact(services)
    done = load(services, client, hires_csv(range(5000, 5100), 4), write="replace")
    assert done["status"] == "succeeded"
    assert sum(assert_exact(services).values()) == 100

    # and a restore brings back the table as it was backed up,
    restored = client.post(f"/backups/{backup['backup_id']}/restore")
    assert restored.status_code == 200, restored.text

    # then the summary equals the recount after each, and after a last fold.
    assert assert_exact(services) == before_backup
    fold_changes(services.db)
    assert assert_exact(services) == before_backup


def test_a_summary_that_drifted_is_reported_then_repaired(
    loaded: tuple[Services, TestClient],
) -> None:
    services, client = loaded
    load(services, client, hires_csv(range(1, 101), 5))
    fold_changes(services.db)
    # Given a summary that lost one key's base row and holds a change for no hire,
    with services.db.write() as conn:
        key = conn.execute(select(hire_counts)).first()
        assert key is not None
        lost = dict(key._mapping)
        conn.execute(
            delete(hire_counts).where(
                hire_counts.c.hire_year == lost["hire_year"],
                hire_counts.c.hire_quarter == lost["hire_quarter"],
                hire_counts.c.department_id == lost["department_id"],
                hire_counts.c.job_id == lost["job_id"],
            )
        )
        ghost = {"hire_year": 1999, "hire_quarter": 1, "department_id": 1, "job_id": 1, "hires": 7}
        conn.execute(insert(hire_count_changes).values(**ghost))

    # when it is verified, then repaired, then verified again,
    found = client.post("/reports/verify").json()
    repaired = client.post("/reports/verify", params={"repair": "true"}).json()
    after = client.post("/reports/verify").json()

    # then the differences are named, corrected, and gone.
    assert (found["matches"], found["differing"], found["repaired"]) == (False, 2, False)
    assert found["differences"] == [
        {"year": 1999, "quarter": 1, "department_id": 1, "job_id": 1, "summary": 7, "recount": 0},
        {
            "year": lost["hire_year"],
            "quarter": lost["hire_quarter"],
            "department_id": lost["department_id"],
            "job_id": lost["job_id"],
            "summary": 0,
            "recount": lost["hires"],
        },
    ]
    assert (repaired["differing"], repaired["repaired"]) == (2, True)
    assert (after["matches"], after["hires"]) == (True, 100)
    assert_exact(services)


def test_one_worker_at_a_time_folds_the_changes(loaded: tuple[Services, TestClient]) -> None:
    services, client = loaded
    # Given changes waiting to be folded, and two workers' fold chores,
    load(services, client, hires_csv(range(1, 51), 6))
    first = SummaryFold(services.db, "worker-1", every_seconds=60)
    second = SummaryFold(services.db, "worker-2", every_seconds=60)

    # when both run, then again after more writes,
    folded = first.run()
    skipped = second.run()
    load(services, client, hires_csv(range(51, 101), 7))
    again = first.run()

    # then only the lease's holder folds, each time, and the counts stay exact.
    assert folded > 0 and skipped == 0 and again > 0
    with services.db.read() as conn:
        assert conn.execute(select(hire_count_changes)).first() is None
    assert sum(assert_exact(services).values()) == 100


def test_an_atomic_load_resumed_mid_part_and_rejecting_rows_at_publish_counts_exactly(
    loaded: tuple[Services, TestClient],
) -> None:
    services, client = loaded
    # Given an atomic load of several parts whose worker stops after a block of a part (which
    # resumes from its checkpoint, so the part's counts are partly recounted from staging),
    services.parts = hooked = HookedParts(services.parts)
    stops = iter([Interrupted("stopping")])

    def stop_once(n: int) -> None:
        if n == 3 and (stop := next(stops, None)) is not None:
            raise stop

    hooked.after_advance = stop_once
    # and whose file repeats an id in another part and refers to a department only a later
    # upload could have had,
    data = (
        hires_csv(range(1, 301), 5)
        + b"7,Again,2021-05-06T10:00:00Z,1,1\n"
        + b"999,Nobody,2021-01-01T00:00:00Z,9,1\n"
    )
    # when it is published,
    done = load(services, client, data, atomic="true")

    # then the rows rejected at publish are left out of the counts, and no row counts twice.
    assert (done["status"], done["rows_inserted"], done["rows_rejected"]) == ("succeeded", 300, 2)
    assert hooked.calls > 3 and done["parts"] > 1
    assert sum(assert_exact(services).values()) == 300
