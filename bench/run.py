"""``make bench``: the service against the databases' own loaders, side by side.

    python -m bench.run [--rows 1000000] [--batch-seconds 30] [--scale-rows 0]
                        [--scale-workers 1,2,4] [--only pg,sqlite,batches]

Prints one table: seconds, rows/s, peak RSS, and the ratios the service is held to.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from bench.generate import write_hired, write_parents
from bench.service import running_service
from common.sql.db import Database
from common.sql.migrate import upgrade

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATA = Path(__file__).resolve().parent / "data"
COLUMNS = ["id", "name", "datetime", "department_id", "job_id"]


@dataclass
class Result:
    name: str
    seconds: float
    rows: int
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def new_pg_database() -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(_libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated(url: str) -> Database:
    db = Database.from_url(url)
    upgrade(db)
    return db


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- baselines ----------------------------------------------------------------------------


def pg_copy(path: Path, rows: int) -> Result:
    url = new_pg_database()
    try:
        migrated(url).dispose()
        libpq = _libpq(url)
        seconds = timed(
            lambda: subprocess.run(
                [
                    "psql",
                    "-q",
                    libpq,
                    "-c",
                    f"\\copy hired_employees ({','.join(COLUMNS)}) FROM '{path}' CSV",
                ],
                check=True,
            )
        )
        return Result("PostgreSQL: psql \\copy", seconds, rows)
    finally:
        drop_pg_database(url)


def _to_sql(url: str, path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(path, header=None, names=COLUMNS, parse_dates=["datetime"])
    frame["datetime"] = frame["datetime"].dt.tz_convert(None)
    frame.to_sql("hired_employees", Database.from_url(url).engine, if_exists="append", index=False)


def pg_to_sql(path: Path, rows: int) -> Result:
    url = new_pg_database()
    try:
        migrated(url).dispose()
        return Result("PostgreSQL: read_csv + to_sql", timed(lambda: _to_sql(url, path)), rows)
    finally:
        drop_pg_database(url)


def sqlite_executemany(path: Path, rows: int, workdir: Path) -> Result:
    file = workdir / "executemany.db"
    migrated(f"sqlite:///{file}").dispose()
    with path.open(newline="") as f:
        data = list(csv.reader(f))
    conn = sqlite3.connect(file)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")

    def load() -> None:
        conn.executemany(
            f"INSERT INTO hired_employees ({','.join(COLUMNS)}) VALUES (?,?,?,?,?)", data
        )
        conn.commit()

    seconds = timed(load)
    conn.close()
    return Result(
        "SQLite: executemany, one transaction", seconds, rows, {"note": "CSV already in memory"}
    )


def sqlite_to_sql(path: Path, rows: int, workdir: Path) -> Result:
    url = f"sqlite:///{workdir / 'to_sql.db'}"
    migrated(url).dispose()
    return Result("SQLite: read_csv + to_sql", timed(lambda: _to_sql(url, path)), rows)


# --- the service --------------------------------------------------------------------------


def service_load(
    label: str,
    path: Path,
    rows: int,
    workdir: Path,
    database_url: str | None,
    workers: int = 1,
    after_load: list[Result] | None = None,
) -> Result:
    """Time one upload to ``succeeded``; with ``after_load``, then also time the reports (on
    PostgreSQL) and a backup and restore of the table, in that order, into ``after_load``."""
    with running_service(workdir, workers, database_url) as service:
        for table in ("departments", "jobs"):
            job = service.client.post(
                f"/uploads/{table}",
                content=(DATA / f"{table}.csv").read_bytes(),
                headers={"Content-Type": "text/csv"},
            ).json()
            service.wait_for(job["job_id"])
        start = time.perf_counter()
        with path.open("rb") as f:
            answer = service.client.post(
                "/uploads/hired_employees", content=f, headers={"Content-Type": "text/csv"}
            )
        uploaded = time.perf_counter() - start
        job = service.wait_for(answer.json()["job_id"])
        seconds = time.perf_counter() - start
        assert job["status"] == "succeeded" and job["rows_inserted"] == rows, job
        result = Result(
            label,
            seconds,
            rows,
            {
                "upload_s": f"{uploaded:.2f}",
                "api_peak_rss_mb": f"{service.peak_rss('api'):.0f}",
                "worker_peak_rss_mb": f"{service.peak_rss('worker'):.0f}",
            },
        )
        if after_load is not None:
            if database_url is not None:
                after_load.extend(_reports(service, rows))
            after_load.extend(
                _backup_and_restore(service, f"{label.split(':')[0]} {rows:,} rows", rows)
            )
        return result


def _backup_and_restore(service: Any, database: str, rows: int) -> list[Result]:
    start = time.perf_counter()
    answer = service.client.post("/backups/hired_employees")
    backed_up = time.perf_counter() - start
    assert answer.status_code == 201, answer.text
    record = answer.json()
    start = time.perf_counter()
    restored = service.client.post(f"/backups/{record['backup_id']}/restore")
    restore_seconds = time.perf_counter() - start
    assert restored.status_code == 200, restored.text
    rss = f"{service.peak_rss('api'):.0f}"
    return [
        Result(
            f"{database}: AVRO backup of the table",
            backed_up,
            rows,
            {"bytes": str(record["byte_size"]), "api_peak_rss_mb": rss},
        ),
        Result(
            f"{database}: restore from that backup", restore_seconds, rows, {"api_peak_rss_mb": rss}
        ),
    ]


def batches(seconds: float, clients: int, workdir: Path) -> Result:
    url = new_pg_database()
    try:
        with running_service(workdir, 0, url) as service:
            service.client.post(
                "/tables/departments/rows",
                json={"rows": [{"id": i, "department": f"Department {i}"} for i in range(1, 13)]},
            )
            service.client.post(
                "/tables/jobs/rows",
                json={"rows": [{"id": i, "job": f"Job {i}"} for i in range(1, 184)]},
            )
            latencies: list[float] = []
            inserted = [0] * clients
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def client(n: int) -> None:
                with httpx.Client(base_url=service.url, timeout=60) as http:
                    batch = 0
                    while time.monotonic() < deadline:
                        base = (n * 10_000_000) + batch * 1000
                        rows = [
                            {
                                "id": base + i + 1,
                                "name": "Ada Lovelace",
                                "datetime": "2021-03-04T05:06:07Z",
                                "department_id": 1 + i % 12,
                                "job_id": 1 + i % 183,
                            }
                            for i in range(1000)
                        ]
                        start = time.perf_counter()
                        answer = http.post("/tables/hired_employees/rows", json={"rows": rows})
                        took = time.perf_counter() - start
                        answer.raise_for_status()
                        with lock:
                            latencies.append(took)
                        inserted[n] += answer.json()["inserted"]
                        batch += 1

            threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return Result(
            f"Batches: {clients} clients x 1000 rows (PostgreSQL)",
            elapsed,
            sum(inserted),
            {"p50_ms": f"{statistics.median(latencies) * 1000:.0f}", "p99_ms": f"{p99 * 1000:.0f}"},
        )
    finally:
        drop_pg_database(url)


def _reports(service: Any, rows: int) -> list[Result]:
    out = []
    for report in ("hires-by-quarter", "departments-above-mean"):
        service.client.get(f"/reports/{report}?year=2021")  # warm the cache
        seconds = timed(lambda r=report: service.client.get(f"/reports/{r}?year=2021"))
        out.append(Result(f"Report {report} ({rows:,} rows, PostgreSQL)", seconds, 0))
    return out


# --- the table ----------------------------------------------------------------------------


def print_table(results: list[Result], ratios: list[str]) -> None:
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}"
    )
    print(f"{'what':52} {'seconds':>9} {'rows/s':>11}  notes")
    for r in results:
        notes = ", ".join(f"{k}={v}" for k, v in r.notes.items())
        print(f"{r.name:52} {r.seconds:9.2f} {r.rows_per_second:11,.0f}  {notes}")
    print()
    for line in ratios:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-seconds", type=float, default=30.0)
    parser.add_argument(
        "--scale-rows",
        type=int,
        default=0,
        help="also load a file of this many rows with 1, 2 and 4 workers",
    )
    parser.add_argument(
        "--scale-workers", default="1,2,4", help="worker counts for the --scale-rows runs"
    )
    parser.add_argument("--only", default="pg,sqlite,batches")
    args = parser.parse_args()
    only = set(args.only.split(","))
    DATA.mkdir(exist_ok=True)
    write_parents(DATA)
    path = write_hired(DATA, args.rows)
    results: list[Result] = []
    ratios: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="bench-"))

    if "pg" in only:
        copy = pg_copy(path, args.rows)
        to_sql = pg_to_sql(path, args.rows)
        url = new_pg_database()
        try:
            after: list[Result] = []
            service = service_load(
                "PostgreSQL: the service, end to end",
                path,
                args.rows,
                work / "pg",
                url,
                after_load=after,
            )
            results += [copy, to_sql, service, *after]
            ratios.append(
                f"PostgreSQL: restore / ingest = {after[-1].seconds / service.seconds:.2f} "
                "(goal <= 2.0)"
            )
        finally:
            drop_pg_database(url)
        ratios.append(
            f"PostgreSQL: service / \\copy = {service.seconds / copy.seconds:.2f} "
            f"(goal <= 2.0); read_csv+to_sql / service = "
            f"{to_sql.seconds / service.seconds:.1f} (goal >= 8)"
        )
    if "sqlite" in only:
        many = sqlite_executemany(path, args.rows, work)
        to_sql = sqlite_to_sql(path, args.rows, work)
        after = []
        service = service_load(
            "SQLite: the service, end to end",
            path,
            args.rows,
            work / "sqlite",
            None,
            after_load=after,
        )
        results += [many, to_sql, service, *after]
        ratios.append(
            f"SQLite: restore / ingest = {after[-1].seconds / service.seconds:.2f} (goal <= 2.0)"
        )
        ratios.append(
            f"SQLite: service / executemany = {service.seconds / many.seconds:.2f} "
            f"(goal <= 2.0); read_csv+to_sql / service = "
            f"{to_sql.seconds / service.seconds:.1f} (goal >= 8)"
        )
    if "batches" in only:
        results.append(batches(args.batch_seconds, 4, work / "batches"))
    if args.scale_rows:
        big = write_hired(DATA, args.scale_rows)
        timings = {}
        for workers in (int(n) for n in args.scale_workers.split(",")):
            url = new_pg_database()
            try:
                # The one-worker run also times the reports and a backup at this size.
                scale_after: list[Result] | None = [] if workers == 1 else None
                r = service_load(
                    f"PostgreSQL: {args.scale_rows:,} rows, {workers} worker(s)",
                    big,
                    args.scale_rows,
                    work / f"scale{workers}",
                    url,
                    workers,
                    after_load=scale_after,
                )
                results.append(r)
                timings[workers] = r.seconds
                if scale_after is not None:
                    results += scale_after
            finally:
                drop_pg_database(url)
        if 1 in timings:
            ratios.append(
                "speed-up: "
                + ", ".join(f"{w} workers {timings[1] / t:.2f}x" for w, t in timings.items())
            )
    print_table(results, ratios)


if __name__ == "__main__":
    main()
