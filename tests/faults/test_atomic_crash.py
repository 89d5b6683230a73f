"""An all-or-nothing load on two workers, one SIGKILLed while parts are staged and the one
publishing SIGKILLed inside its publishing transaction: the file is published exactly once,
whole, and nothing is visible before."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.sql.db import Database
from common.usecases.summary import check_summary
from tests.faults.conftest import (
    Fleet,
    file_chunks,
    get_job,
    query,
    table_held,
    table_truth,
    upload,
    wait_for_job,
    wait_until_blocked,
    write_parents_and_upload,
)
from tests.faults.test_crash import (
    BLOCKED_WITHIN_SECONDS,
    CRASH_ENV,
    LOAD_WITHIN_SECONDS,
    ROWS,
    SEED,
    employees_with_bad_rows,
    named,
    pick_victim,
    stopped_workers,
    wait_for_progress,
)
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

__all__ = ["employees_with_bad_rows"]  # the module's fixture, shared


def test_an_atomic_load_killed_while_staging_and_while_publishing_publishes_once(
    fleet_factory: Any, employees_with_bad_rows: tuple[Path, dict[int, str]], tmp_path: Path
) -> None:
    path, bad = employees_with_bad_rows
    expected_ids = set(range(1, ROWS + 1)) - set(bad)
    with postgres_database() as url:
        fleet: Fleet = fleet_factory(url, **CRASH_ENV)
        fleet.api()
        workers = {n: fleet.worker(n, DATABASE_URL=named(url, n)) for n in (0, 1)}
        with httpx.Client(base_url=fleet.base_url, timeout=60) as client:
            # Given the parents loaded and the file uploaded to load all or nothing,
            write_parents_and_upload(client, tmp_path / "parents")
            job = upload(client, "hired_employees", file_chunks(path), path.name, atomic="true")
            job_id = job["job_id"]

            # when a worker staging a part is SIGKILLed (and restarted),
            kills: list[tuple[str, int, bool]] = []
            while True:
                at = wait_for_progress(client, job_id, kills)
                slot = pick_victim(url, "anywhere", workers, random.Random(SEED))
                if slot is not None:
                    break
            fleet.kill(workers[slot])
            kills.append(("staging", at, True))
            workers[slot] = fleet.worker(slot, wait=False, DATABASE_URL=named(url, slot))
            # nothing of the file is in the table while it is staged;
            assert table_truth(url, "hired_employees").rows == 0

            # and when the worker publishing it is SIGKILLed inside the publishing transaction,
            with table_held(url, "hired_employees"):
                wait_until_blocked(url, "hired_employees", within=BLOCKED_WITHIN_SECONDS)
                [publisher] = stopped_workers(url, "before the rows")
                assert get_job(client, job_id)["status"] == "running"
                fleet.kill(workers[publisher])
                workers[publisher] = fleet.worker(
                    publisher, wait=False, DATABASE_URL=named(url, publisher)
                )
            done = wait_for_job(client, job_id, LOAD_WITHIN_SECONDS, why=f"kills={kills}")

        # then the job succeeded once with the truth for counters,
        assert done["status"] == "succeeded", done
        assert (done["rows_read"], done["rows_inserted"], done["rows_rejected"]) == (
            ROWS,
            len(expected_ids),
            len(bad),
        ), done
        # the table holds exactly the valid rows, none twice,
        truth = table_truth(url, "hired_employees")
        assert (truth.rows, truth.distinct_ids, truth.id_sum) == (
            len(expected_ids),
            len(expected_ids),
            sum(expected_ids),
        ), truth
        # the reports' summary equals a recount of them,
        db = Database.from_url(url)
        try:
            assert check_summary(db).matches
        finally:
            db.dispose()
        # every invalid row is stored once, and no staged row is left behind.
        stored = query(
            url,
            "SELECT line, COUNT(*) FROM job_rejections r JOIN ingest_jobs j "
            "ON j.seq = r.job_seq WHERE j.job_id = :j GROUP BY line",
            j=job_id,
        )
        assert {line for line, _ in stored} == set(bad)
        assert all(count == 1 for _, count in stored)
        # The staged rows are dropped just after the publishing transaction.
        deadline = time.monotonic() + 30
        while query(url, "SELECT COUNT(*) FROM stage_hired_employees") != [(0,)]:
            assert time.monotonic() < deadline, "staged rows left behind"
            time.sleep(0.1)
