"""Crashes for real: workers SIGKILLed again and again during a million-row load, and the API
SIGKILLed while an upload streams in. Afterwards the rows are counted in the database."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
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
    table_truth,
    upload,
    wait_for_job,
    write_parents_and_upload,
)
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

ROWS = 1_000_000
BAD_EVERY = 10_007
KILLS = 20
SEED = 20240607
LOAD_TIMEOUT_SECONDS = 200.0

CRASH_ENV = {
    "LOCK_DURATION_SECONDS": "5",
    "CHUNK_BYTES": "262144",
    # Blocks are cut from reads of UPLOAD_BLOCK_BYTES (4 MiB by default): without this, a
    # block would be 4 MiB whatever CHUNK_BYTES says.
    "UPLOAD_BLOCK_BYTES": "65536",
    # About four parts, so that both workers ingest at the same time and either may be killed.
    "PART_BYTES": str(16 * 1024 * 1024),
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
def million(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str]]:
    """A 1,000,000-row hired_employees file with every BAD_EVERY-th line made invalid.

    Line n holds id n, so the valid ids are exactly 1..ROWS minus the bad lines.
    """
    folder = tmp_path_factory.mktemp("million")
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


def test_workers_killed_twenty_times_lose_and_duplicate_nothing(
    fleet_factory: Any, million: tuple[Path, dict[int, str]], tmp_path: Path
) -> None:
    path, bad = million
    expected_ids = set(range(1, ROWS + 1)) - set(bad)
    rng = random.Random(SEED)
    with postgres_database() as url:
        fleet: Fleet = fleet_factory(url, **CRASH_ENV)
        fleet.api()
        workers = {0: fleet.worker(0), 1: fleet.worker(1)}
        with httpx.Client(base_url=fleet.base_url, timeout=60) as client:
            # Given the parents loaded and the big file uploaded,
            write_parents_and_upload(client, tmp_path / "parents")
            job_id = upload(client, "hired_employees", file_chunks(path), path.name)["job_id"]
            size = path.stat().st_size

            # when a random worker is SIGKILLed at 20 random moments spread over the load
            # (each restarted at once),
            marks = sorted(rng.uniform(0.03, 0.93) for _ in range(KILLS))
            kills: list[tuple[int, int, bool]] = []
            began = time.monotonic()
            deadline = began + LOAD_TIMEOUT_SECONDS
            job = get_job(client, job_id)
            for mark in marks:
                while job["bytes_done"] < mark * size and job["status"] not in (
                    "succeeded",
                    "failed",
                ):
                    assert time.monotonic() < deadline, f"load stalled: {job}"
                    time.sleep(0.05)
                    job = get_job(client, job_id)
                if job["status"] in ("succeeded", "failed"):
                    break
                slot = rng.randrange(2)
                victim = workers[slot]
                # Kill a worker that consumes, not one still starting up,
                victim.wait_for_log("worker started")
                time.sleep(rng.uniform(0.0, 0.4))  # anywhere inside a block.
                fleet.kill(victim)
                kills.append((slot, job["bytes_done"], in_part(victim.stderr())))
                workers[slot] = fleet.worker(slot, wait=False)
            done = wait_for_job(
                client, job_id, max(10.0, deadline - time.monotonic()), why=f"kills={kills}"
            )
            elapsed = time.monotonic() - began

            # then every kill happened during the load,
            assert len(kills) == KILLS, f"the load ended after {len(kills)} kills: {kills}"
            # many of them in the middle of a part,
            mid_part = sum(1 for _, _, busy in kills if busy)
            assert mid_part >= KILLS // 4, kills
            print(f"{len(kills)} kills, {mid_part} inside a part, load took {elapsed:.0f} s")
            # the job succeeded with counters equal to the truth,
            assert done["status"] == "succeeded", done
            assert done["rows_read"] == ROWS, done
            assert done["rows_inserted"] == len(expected_ids), done
            assert done["rows_rejected"] == len(bad), done
            assert done["bytes_done"] == size, done

        # the table holds exactly the valid rows, none twice,
        truth = table_truth(url, "hired_employees")
        assert truth.rows == len(expected_ids), (truth, elapsed)
        assert truth.distinct_ids == truth.rows, truth
        assert truth.id_sum == sum(expected_ids), truth
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
        time.sleep(1)
        assert table_truth(url, "departments").rows == 2
        blocks = fleet.worker_log_events("block committed")
        assert {r["job_id"] for _, r in blocks} == {job["job_id"]}, blocks
