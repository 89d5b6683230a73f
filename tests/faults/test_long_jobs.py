"""A job much longer than the message lock: the lock and the part's lease are renewed, so the
one worker that took it keeps it to the end, while a second worker stands by."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.generate import write_hired
from tests.faults.conftest import (
    Fleet,
    file_chunks,
    table_truth,
    upload,
    wait_for_job,
    write_parents_and_upload,
)
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

ROWS = 700_000
LOCK_SECONDS = 2.0
LONG_ENV = {
    "LOCK_DURATION_SECONDS": str(LOCK_SECONDS),
    # Small blocks: hundreds of commits, so that the job lasts several lock durations.
    "CHUNK_BYTES": "65536",
    "UPLOAD_BLOCK_BYTES": "65536",
}


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
            # Given one part far longer than the lock, with two workers ready to take it,
            job_id = upload(client, "hired_employees", file_chunks(path), path.name)["job_id"]
            # when it is loaded,
            done = wait_for_job(client, job_id, 180)

        # then it succeeded, once, with exact counts,
        assert done["status"] == "succeeded", done
        assert done["parts"] == 1, done
        assert done["attempts"] == 1, done
        assert (done["rows_read"], done["rows_inserted"], done["rows_rejected"]) == (ROWS, ROWS, 0)
        took = datetime.fromisoformat(done["finished_at"]) - datetime.fromisoformat(
            done["started_at"]
        )
        assert took.total_seconds() >= 3 * LOCK_SECONDS, f"too short to prove anything: {took}"
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
        assert len(blocks) > 100, len(blocks)
        assert sum(r["rows_read"] for _, r in blocks) == ROWS
        for event in (
            "part taken over by another worker",
            "part lease taken over by another worker",
            "message lock lost; stopping this delivery",
            "could not settle: lock lost",
        ):
            assert fleet.worker_log_events(event) == [], event
