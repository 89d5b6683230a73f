"""Crashes for real: workers SIGKILLed again and again during a load, and the API SIGKILLed
while an upload streams in. Afterwards the rows are counted in the database.

The kills do not wait for the load to reach random points, which a fast machine passes before
the test looks and a slow one reaches late: the test holds a table so that the workers stop
inside their commits, kills one there, and lets the others go on; every third kill lands at a
random moment of a running load instead.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from bench.generate import write_hired
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
    write_parents_and_upload,
)
from tests.support.processes import Started
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

# CRASH_ROWS runs the crash tests on a longer file by hand (10M rows take many minutes); the
# waits, blocks and parts grow with it, so that a file keeps about five parts of equal blocks.
ROWS = int(os.environ.get("CRASH_ROWS", "300000"))
SCALE = max(1.0, ROWS / 300_000)
BAD_EVERY = 10_007
SEED = 20240607
PROGRESS_WITHIN_SECONDS = 60.0 * SCALE
# How long a held table waits for a worker to stop at the chosen point, and how many times.
# Shorter than a message lock: holding the parts table holds the lease renewals too, and a hold
# that outlived the locks would end every delivery in flight.
STOP_WITHIN_SECONDS = 2.0
STOP_ATTEMPTS = 30
LOAD_WITHIN_SECONDS = 300.0 * SCALE
BLOCKED_WITHIN_SECONDS = 60.0 * SCALE
# Where the victim is stopped: before its block's rows are written (the table it writes is
# held), after they are written and before its checkpoint moves (the parts table is held), or
# nowhere in particular.
KILL_POINTS = ("before the rows", "before the checkpoint", "anywhere") * 4

CRASH_ENV = {
    "LOCK_DURATION_SECONDS": "3",
    "BLOCK_BYTES": str(int(65536 * SCALE)),
    # Blocks are cut from reads of UPLOAD_BLOCK_BYTES (4 MiB by default): without this, a
    # block would be 4 MiB whatever CHUNK_BYTES says.
    "BLOB_CHUNK_BYTES": str(int(65536 * SCALE)),
    # About five parts, so that both workers ingest at the same time and either may be killed.
    "PART_BYTES": str(int(3 * 1024 * 1024 * SCALE)),
    "TRANSIENT_BACKOFF_SECONDS": "0.5",
    "TRANSIENT_BACKOFF_MAX_SECONDS": "2",
}


def in_part(log: str) -> bool:
    """Whether a worker's log ends inside a part: started (or committed a block), not done."""
    last = None
    for line in log.splitlines():
        for event in ("part started", "block committed", "part finished", "message completed"):
            if f'"event": "{event}"' in line:
                last = event
    return last in ("part started", "block committed")


def bad_line(line: int) -> tuple[str, str]:
    """The invalid row put on ``line`` (whose valid id would be ``line``), and why it fails."""
    kind = (line // BAD_EVERY) % 5
    if kind == 0:
        return f"x{line},Bad Id,2021-01-01T00:00:00Z,1,1", "not_integer"
    if kind == 1:
        return f"{line},No Zone,2021-01-01T00:00:00,1,1", "missing_timezone"
    if kind == 2:
        return f"{line},Too,Many,2021-01-01T00:00:00Z,1,1", "field_count"
    if kind == 3:
        # The id of the line before: a duplicate the database check has to catch.
        return f"{line - 1},Twice,2021-01-01T00:00:00Z,1,1", "duplicate_id"
    return f"{line},Nowhere,2021-01-01T00:00:00Z,999,1", "unknown_reference"


@pytest.fixture(scope="module")
def employees_with_bad_rows(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[int, str]]:
    """A hired_employees file of ROWS rows with every BAD_EVERY-th line made invalid.

    Line n holds id n, so the valid ids are exactly 1..ROWS minus the bad lines.
    """
    folder = tmp_path_factory.mktemp("employees")
    source = write_hired(folder, ROWS)
    lines = source.read_bytes().split(b"\n")
    assert lines[-1] == b""
    bad: dict[int, str] = {}
    for line in range(BAD_EVERY, ROWS + 1, BAD_EVERY):
        raw, rule = bad_line(line)
        lines[line - 1] = raw.encode()
        bad[line] = rule
    path = folder / "hired_employees_with_bad_rows.csv"
    path.write_bytes(b"\n".join(lines))
    source.unlink()
    return path, bad


def named(url: str, slot: int) -> str:
    """The database URL for the worker in ``slot``: its sessions carry its name, so that the
    test can tell which worker a stopped commit belongs to."""
    return (
        make_url(url)
        .update_query_dict({"application_name": f"worker-{slot}"})
        .render_as_string(hide_password=False)
    )


def stopped_workers(url: str, point: str) -> list[int]:
    """Slots of the workers whose commit is stopped at ``point``: waiting to write rows, or
    having written them (holding the employees table) and waiting to move the checkpoint."""
    if point == "before the rows":
        sql = (
            "SELECT DISTINCT a.application_name FROM pg_locks w "
            "JOIN pg_stat_activity a ON a.pid = w.pid WHERE NOT w.granted "
            "AND w.relation = CAST('hired_employees' AS regclass)"
        )
    else:
        sql = (
            "SELECT DISTINCT a.application_name FROM pg_locks w "
            "JOIN pg_locks h ON h.pid = w.pid JOIN pg_stat_activity a ON a.pid = w.pid "
            "WHERE NOT w.granted AND w.relation = CAST('job_parts' AS regclass) "
            "AND h.granted AND h.mode = 'RowExclusiveLock' "
            "AND h.relation = CAST('hired_employees' AS regclass)"
        )
    names = [str(name) for (name,) in query(url, sql)]
    return sorted(int(n.removeprefix("worker-")) for n in names if n.startswith("worker-"))


def stopped_at(url: str, point: str) -> AbstractContextManager[None]:
    table = {"before the rows": "hired_employees", "before the checkpoint": "job_parts"}
    return table_held(url, table[point]) if point in table else nullcontext()


def test_workers_killed_again_and_again_lose_and_duplicate_nothing(
    fleet_factory: Any, employees_with_bad_rows: tuple[Path, dict[int, str]], tmp_path: Path
) -> None:
    path, bad = employees_with_bad_rows
    expected_ids = set(range(1, ROWS + 1)) - set(bad)
    rng = random.Random(SEED)
    with postgres_database() as url:
        fleet: Fleet = fleet_factory(url, **CRASH_ENV)
        fleet.api()
        workers = {n: fleet.worker(n, DATABASE_URL=named(url, n)) for n in (0, 1)}
        with httpx.Client(base_url=fleet.base_url, timeout=60) as client:
            # Given the parents loaded and the file uploaded,
            write_parents_and_upload(client, tmp_path / "parents")
            job_id = upload(client, "hired_employees", file_chunks(path), path.name)["job_id"]
            size = path.stat().st_size

            # when, again and again, a worker is SIGKILLed inside a part (and restarted at once)
            kills: list[tuple[str, int, bool]] = []
            for point in KILL_POINTS:
                for _ in range(STOP_ATTEMPTS):
                    before = wait_for_progress(client, job_id, kills)
                    with stopped_at(url, point):
                        victim_slot = pick_victim(url, point, workers, rng)
                        if victim_slot is None:
                            continue  # both were between parts when the table was held
                        victim = workers[victim_slot]
                        fleet.kill(victim)
                        kills.append((point, before, in_part(victim.stderr())))
                        workers[victim_slot] = fleet.worker(
                            victim_slot, wait=False, DATABASE_URL=named(url, victim_slot)
                        )
                        break
                else:
                    pytest.fail(f"no worker stopped {point} in {STOP_ATTEMPTS} tries: {kills}")
            done = wait_for_job(client, job_id, LOAD_WITHIN_SECONDS, why=f"kills={kills}")

            # then every kill happened during the load, those stopped in a commit inside a part,
            assert len(kills) == len(KILL_POINTS), kills
            assert all(busy for point, _, busy in kills if point != "anywhere"), kills
            assert all(at < size for _, at, _ in kills), kills
            # the job succeeded with counters equal to the truth,
            assert done["status"] == "succeeded", done
            assert done["rows_read"] == ROWS, done
            assert done["rows_inserted"] == len(expected_ids), done
            assert done["rows_rejected"] == len(bad), done
            assert done["bytes_done"] == size, done

        # the table holds exactly the valid rows, none twice,
        truth = table_truth(url, "hired_employees")
        assert truth.rows == len(expected_ids), truth
        assert truth.distinct_ids == truth.rows, truth
        assert truth.id_sum == sum(expected_ids), truth
        # the reports' summary equals a recount of those rows,
        db = Database.from_url(url)
        try:
            assert check_summary(db).matches
        finally:
            db.dispose()
        # and every invalid row is stored exactly once, with the rule it broke.
        stored = query(
            url,
            "SELECT line, COUNT(*), MIN(rules) FROM job_rejections r JOIN ingest_jobs j "
            "ON j.seq = r.job_seq WHERE j.job_id = :j GROUP BY line",
            j=job_id,
        )
        assert {line for line, _, _ in stored} == set(bad)
        assert all(count == 1 for _, count, _ in stored), [s for s in stored if s[1] != 1]
        for line, _, errors in stored:
            assert bad[line] in errors, (line, errors)
        # Ingestion really was cut short: some delivery of a part ran more than once.
        attempts = query(url, "SELECT attempts FROM ingest_jobs WHERE job_id = :j", j=job_id)
        assert attempts[0][0] >= 2, attempts


def wait_for_progress(client: httpx.Client, job_id: str, kills: list[Any]) -> int:
    """Until a block was committed since the last kill (bytes done moved); the bytes done.

    A stalled load fails here; how long a healthy one takes does not matter.
    """
    last = kills[-1][1] if kills else 0
    deadline = time.monotonic() + PROGRESS_WITHIN_SECONDS
    while True:
        job = get_job(client, job_id)
        assert job["status"] in ("queued", "running"), f"the load ended after {kills}: {job}"
        if job["bytes_done"] > last:
            return int(job["bytes_done"])
        assert time.monotonic() < deadline, f"no progress in {PROGRESS_WITHIN_SECONDS} s: {job}"
        time.sleep(0.02)


def pick_victim(
    url: str, point: str, workers: dict[int, Started], rng: random.Random
) -> int | None:
    """A worker stopped at ``point``, or for "anywhere" one that is simply loading a part; None
    if none got there in time. Holding a table stops a worker that is starting a part too
    (taking its lease writes the parts table): when both happen to be starting one, neither
    reaches a commit, and the caller lets go and tries again."""
    deadline = time.monotonic() + STOP_WITHIN_SECONDS
    while time.monotonic() < deadline:
        if point == "anywhere":
            busy = [slot for slot, w in workers.items() if in_part(w.stderr())]
            if busy:
                time.sleep(rng.uniform(0.0, 0.2))  # anywhere inside the work of a block
                return rng.choice(busy)
        elif stopped := stopped_workers(url, point):
            return rng.choice(stopped)
        time.sleep(0.02)
    return None


def endless_csv(started: threading.Event, kill_after: int) -> Iterator[bytes]:
    """Valid departments rows, about 200 KiB at a time, forever; sets ``started`` once
    ``kill_after`` bytes went out, and slows down so that the kill lands mid-stream."""
    sent = 0
    n = 0
    while True:
        chunk = "".join(f"{i},Department {i}\n" for i in range(n + 1, n + 10_001)).encode()
        n += 10_000
        sent += len(chunk)
        yield chunk
        if sent >= kill_after:
            started.set()
            time.sleep(0.05)


def test_api_killed_during_an_upload_leaves_no_job_and_no_blob(
    fleet_factory: Any, tmp_path: Path
) -> None:
    with postgres_database() as url:
        fleet: Fleet = fleet_factory(url)
        api = fleet.api()
        fleet.worker(0)
        streaming = threading.Event()
        errors: list[BaseException] = []

        def send() -> None:
            with httpx.Client(base_url=fleet.base_url, timeout=30) as client:
                try:
                    client.post(
                        "/uploads/departments",
                        content=endless_csv(streaming, kill_after=20 * 1024 * 1024),
                        params={"filename": "half.csv"},
                        headers={"Content-Type": "text/csv"},
                    )
                except httpx.HTTPError as exc:
                    errors.append(exc)

        # Given a large upload streaming into the API,
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        assert streaming.wait(60), "the upload did not start"
        partials = [p for p in fleet.blob_root.rglob("*") if p.is_file()]
        assert partials, "the API should be writing the upload somewhere by now"

        # when the API is SIGKILLed mid-stream,
        fleet.kill(api)
        sender.join(30)
        assert not sender.is_alive()
        # then the client gets an error (not an answer),
        assert errors and isinstance(errors[0], httpx.TransportError), errors

        # and once the API is back, no job exists for the half file, none is ever processed,
        fleet.api()
        with httpx.Client(base_url=fleet.base_url, timeout=30) as client:
            listed = client.get("/jobs", params={"limit": 100}).json()
            assert listed["total"] == 0, listed
            assert query(url, "SELECT COUNT(*) FROM ingest_jobs") == [(0,)]
            assert query(url, "SELECT COUNT(*) FROM queue_messages") == [(0,)]
            # no blob is visible in the blob folder (a hidden partial file may remain),
            visible = [
                p.relative_to(fleet.blob_root).as_posix()
                for p in fleet.blob_root.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(fleet.blob_root).parts)
            ]
            assert visible == []
            leftovers = [p.name for p in fleet.blob_root.rglob("*") if p.is_file()]
            assert all(n.startswith(".") and n.endswith(".partial") for n in leftovers), leftovers
            # and the service still works: a complete upload after it loads.
            job = upload(client, "departments", b"1,Sales\n2,Legal\n", "whole.csv")
            done = wait_for_job(client, job["job_id"], 60)
            assert done["status"] == "succeeded" and done["rows_inserted"] == 2, done
            listed = client.get("/jobs", params={"limit": 100}).json()
            assert [j["original_name"] for j in listed["items"]] == ["whole.csv"], listed
        assert table_truth(url, "departments").rows == 2
        blocks = fleet.worker_log_events("block committed")
        assert {r["job_id"] for _, r in blocks} == {job["job_id"]}, blocks
