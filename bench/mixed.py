"""Several workers loading one file while clients post JSON batches, on PostgreSQL: what each
gets, whether any transaction deadlocked, and whether the summary still equals a recount."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from bench.databases import drop_pg_database, libpq, new_pg_database
from bench.loads import DATA, post_batches, upload_and_wait
from bench.results import Result
from bench.service import running_service

# The 1M-row file in six parts, so that four workers share it.
PART_BYTES = 8 * 1024 * 1024


def _deadlocks(url: str) -> int:
    with psycopg.connect(libpq(url)) as conn:
        row = conn.execute(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def mixed_load(
    path: Path, rows: int, workdir: Path, workers: int, clients: int, api_processes: int
) -> list[Result]:
    """The file loaded by ``workers`` workers alone, then again, into a new database, while
    ``clients`` clients post batches of other ids until the job has succeeded."""
    out: list[Result] = []
    for with_batches in (False, True):
        url = new_pg_database()
        try:
            where = workdir / f"mixed{int(with_batches)}"
            settings = {"PART_BYTES": str(PART_BYTES)}
            with (
                running_service(where, workers, url, api_processes, settings) as service,
                ThreadPoolExecutor(1) as pool,
            ):
                service.load_parents(DATA)
                deadlocks = _deadlocks(url)
                loaded = threading.Event()
                posting = (
                    pool.submit(post_batches, service.url, clients, loaded.is_set, rows + 1)
                    if with_batches
                    else None
                )
                try:
                    seconds = upload_and_wait(service, path, rows).seconds
                finally:
                    loaded.set()
                recount = service.client.post("/reports/verify").json()
                assert recount["matches"], recount
                label = f"PostgreSQL: {rows:,} rows, {workers} workers"
                notes = {
                    "deadlocks": str(_deadlocks(url) - deadlocks),
                    "summary": "equals the recount",
                }
                if posting is None:
                    out.append(Result(label, seconds, rows, notes))
                    continue
                out.append(Result(f"{label}, {clients} clients posting", seconds, rows, notes))
                out.append(
                    posting.result().result(
                        f"Batches: {clients} clients x 1000 rows meanwhile "
                        f"(API_PROCESSES={api_processes})"
                    )
                )
        finally:
            drop_pg_database(url)
    return out
