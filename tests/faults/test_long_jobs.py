"""A job much longer than the message lock: the lock and the part's lease are renewed, so the
one worker that took it keeps it to the end, while a second worker stands by.

The job is made long by holding its table: the worker waits inside its first commit for as many
lock durations as the test decides, whatever the speed of the machine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.generate import write_hired
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
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

ROWS = 40_000
LOCK_SECONDS = 2.0
HELD_FOR_LOCKS = 3
LONG_ENV = {
    "LOCK_DURATION_SECONDS": str(LOCK_SECONDS),
    # Small blocks: many commits, before and after the hold.
    "BLOCK_BYTES": "65536",
    "BLOB_CHUNK_BYTES": "65536",
}


def delivery(url: str, job_id: str) -> tuple[str, Any, int, bool]:
    """(lock token, locked until, delivery count, still locked) of the job's message."""
    [row] = query(
        url,
        "SELECT lock_token, locked_until, delivery_count, "
        "locked_until > CAST(clock_timestamp() AT TIME ZONE 'UTC' AS timestamp) "
        "FROM queue_messages WHERE message_id LIKE :m",
        m=f"{job_id}:%",
    )
    return str(row[0]), row[1], int(row[2]), bool(row[3])


def test_a_job_longer_than_three_locks_is_ingested_once_by_one_worker(
    fleet_factory: Any, tmp_path: Path
) -> None:
    (tmp_path / "file").mkdir()
    path = write_hired(tmp_path / "file", ROWS)
    with postgres_database() as url:
        fleet: Fleet = fleet_factory(url, **LONG_ENV)
        fleet.api()
        fleet.worker(0)
        fleet.worker(1)
        with httpx.Client(base_url=fleet.base_url, timeout=30) as client:
            write_parents_and_upload(client, tmp_path / "parents")
            # Given the employees table held, and one part taken by one of two workers,
            with table_held(url, "hired_employees"):
                job_id = upload(client, "hired_employees", file_chunks(path), path.name)["job_id"]
                wait_until_blocked(url, "hired_employees")
                token, locked_until, deliveries, _ = delivery(url, job_id)

                # when the worker waits inside its first commit for three lock durations,
                held_until = time.monotonic() + HELD_FOR_LOCKS * LOCK_SECONDS
                while time.monotonic() < held_until:
                    assert get_job(client, job_id)["status"] == "running"
                    time.sleep(0.1)

                # then its message is still locked by the same delivery, renewed meanwhile,
                token_after, locked_after, deliveries_after, locked = delivery(url, job_id)
                assert (token_after, deliveries_after, locked) == (token, deliveries, True)
                assert locked_after > locked_until
                assert get_job(client, job_id)["bytes_done"] == 0
            done = wait_for_job(client, job_id, 180)

        # and once let go it succeeded, once, with exact counts,
        assert done["status"] == "succeeded", done
        assert (done["parts"], done["attempts"]) == (1, 1), done
        assert (done["rows_read"], done["rows_inserted"], done["rows_rejected"]) == (ROWS, ROWS, 0)
        truth = table_truth(url, "hired_employees")
        assert truth.rows == truth.distinct_ids == ROWS, truth
        assert truth.id_sum == ROWS * (ROWS + 1) // 2, truth

        # only one worker committed its blocks, and nobody took the part over.
        blocks = [
            (w, r)
            for w, r in fleet.worker_log_events("block committed")
            if r.get("job_id") == job_id
        ]
        assert len({w for w, _ in blocks}) == 1, sorted({w for w, _ in blocks})
        assert len(blocks) > 1, len(blocks)
        assert sum(r["rows_read"] for _, r in blocks) == ROWS
        for event in (
            "part taken over by another worker",
            "part lease taken over by another worker",
            "message lock lost; stopping this delivery",
            "could not settle: lock lost",
        ):
            assert fleet.worker_log_events(event) == [], event
