"""The service itself, end to end: a file loaded, the reports, a backup and a restore, and
clients posting JSON batches."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from bench.databases import drop_pg_database, new_pg_database
from bench.reports import reports_after_load
from bench.results import Result
from bench.service import Service, running_service

DATA = Path(__file__).resolve().parent / "data"


def service_load(
    label: str,
    path: Path,
    rows: int,
    workdir: Path,
    database_url: str | None,
    workers: int = 1,
    after_load: list[Result] | None = None,
    backup: bool = True,
    options: dict[str, str] | None = None,
) -> Result:
    """Time one upload (with the load ``options``) to ``succeeded``; with ``after_load``, then
    also time the reports (before and after the summary's changes are folded)
    and, with ``backup``, a backup and restore of the table, in that order, into
    ``after_load``."""
    with running_service(workdir, workers, database_url) as service:
        service.load_parents(DATA)
        uploaded, seconds, _ = upload_and_wait(service, path, rows, options)
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
            url = database_url or f"sqlite:///{(workdir / 'ingest.db').resolve()}"
            after_load.extend(reports_after_load(service, rows, url))
            if backup:
                after_load.extend(
                    _backup_and_restore(service, f"{label.split(':')[0]} {rows:,} rows", rows)
                )
        return result


class Uploaded(NamedTuple):
    upload_seconds: float  # to the end of the upload
    seconds: float  # to the job succeeded
    job: dict[str, Any]


def upload_and_wait(
    service: Service, path: Path, rows: int, options: dict[str, str] | None = None
) -> Uploaded:
    """Upload ``path`` to hired_employees (with the load ``options``) and wait until its job
    has succeeded with all ``rows`` inserted."""
    start = time.perf_counter()
    with path.open("rb") as f:
        answer = service.client.post(
            "/uploads/hired_employees",
            content=f,
            params=options or {},
            headers={"Content-Type": "text/csv"},
        )
    uploaded = time.perf_counter() - start
    job = service.wait_for(answer.json()["job_id"])
    assert job["status"] == "succeeded" and job["rows_inserted"] == rows, job
    return Uploaded(uploaded, time.perf_counter() - start, job)


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


def batches(seconds: float, clients: int, workdir: Path, api_processes: int) -> Result:
    url = new_pg_database()
    try:
        with running_service(workdir / str(api_processes), 0, url, api_processes) as service:
            service.client.post(
                "/tables/departments/rows",
                json={"rows": [{"id": i, "department": f"Department {i}"} for i in range(1, 13)]},
            )
            service.client.post(
                "/tables/jobs/rows",
                json={"rows": [{"id": i, "job": f"Job {i}"} for i in range(1, 184)]},
            )
            deadline = time.monotonic() + seconds
            posted = post_batches(service.url, clients, lambda: time.monotonic() >= deadline)
        label = (
            f"Batches: {clients} clients x 1000 rows (PostgreSQL, API_PROCESSES={api_processes})"
        )
        return posted.result(label)
    finally:
        drop_pg_database(url)


@dataclass
class Posted:
    """What clients posting batches got: rows inserted, each batch's latency, the seconds."""

    inserted: int
    latencies: list[float]
    seconds: float

    def result(self, label: str) -> Result:
        ordered = sorted(self.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        notes = {
            "p50_ms": f"{statistics.median(ordered) * 1000:.0f}",
            "p99_ms": f"{p99 * 1000:.0f}",
        }
        return Result(label, self.seconds, self.inserted, notes)


def post_batches(url: str, clients: int, done: Callable[[], bool], first_id: int = 1) -> Posted:
    """``clients`` threads posting 1000-row ``hired_employees`` batches of new ids (from
    ``first_id``, 10M apart per client) to the service at ``url`` until ``done()``."""
    latencies: list[float] = []
    inserted = [0] * clients
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            batch = 0
            while not done():
                base = first_id - 1 + n * 10_000_000 + batch * 1000
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
    return Posted(sum(inserted), latencies, time.perf_counter() - start)
