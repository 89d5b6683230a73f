"""Driving the service in-process: the API through a test client, workers through their loop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from api.app import create_app
from common.blob import BlobStore
from common.bootstrap import Services, build_blob_store, build_services
from common.sql.catalog_tables import data_table
from common.sql.schema import ingest_jobs, job_rejections
from tests.conftest import NO_WAIT_RETRY, make_settings
from worker.main import build_consumer


@contextmanager
def service_set(
    tmp_path: Path,
    database_url: str,
    *,
    wrap_blob: Callable[[BlobStore], BlobStore] | None = None,
    **overrides: Any,
) -> Iterator[Services]:
    """Services on ``database_url`` with the fast test settings plus ``overrides``;
    ``wrap_blob`` may wrap the blob store the workers and the API use."""
    settings = make_settings(tmp_path, database_url, **overrides)
    blob = build_blob_store(settings)
    built = build_services(
        settings, blob=wrap_blob(blob) if wrap_blob else blob, retry=NO_WAIT_RETRY
    )
    try:
        yield built
    finally:
        built.close()


@contextmanager
def api_client(services: Services) -> Iterator[TestClient]:
    """The real app wired to ``services``, started and stopped around the block."""
    with TestClient(create_app(services.settings, services)) as client:
        yield client


def drain(services: Services, *, max_rounds: int = 400) -> int:
    """Run one consumer until no message is waiting or locked; return messages processed."""
    consumer = build_consumer(services, threading.Event())
    processed = 0
    for _ in range(max_rounds):
        if services.queue.active_count() == 0:
            return processed
        processed += consumer.run_once()
    raise AssertionError(f"the queue still holds messages after {max_rounds} rounds")


def drain_in_threads(services: Services, workers: int, *, max_seconds: float = 60.0) -> None:
    """Run ``workers`` consumers in threads until the queue is empty."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        consumer = build_consumer(services, stop)
        try:
            while not stop.is_set():
                consumer.run_once()
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, name=f"consumer-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        emptied = threading.Event()
        for _ in range(int(max_seconds / 0.05)):
            if services.queue.active_count() == 0 or errors:
                emptied.set()
                break
            stop.wait(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert emptied.is_set(), "the queue did not empty in time"


def upload(client: TestClient, table: str, data: bytes, **params: Any) -> Any:
    response = client.post(
        f"/uploads/{table}", content=data, headers={"content-type": "text/csv"}, params=params
    )
    assert response.status_code in (200, 202), response.text
    return response.json()


def job(client: TestClient, job_id: str) -> dict[str, Any]:
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def table_rows(services: Services, table: str) -> list[dict[str, Any]]:
    """Every row of a data table, by id."""
    t = data_table(table)
    with services.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.id))]


def table_ids(services: Services, table: str) -> list[int]:
    return [int(r["id"]) for r in table_rows(services, table)]


def stored_rejections(services: Services, job_id: str) -> list[tuple[int, str]]:
    """(line, raw) of every stored rejection of a job, in line order, duplicates kept."""
    jr = job_rejections
    with services.db.read() as conn:
        return [
            (int(r.line), r.raw)
            for r in conn.execute(
                select(jr.c.line, jr.c.raw)
                .join(ingest_jobs, ingest_jobs.c.seq == jr.c.job_seq)
                .where(ingest_jobs.c.job_id == job_id)
                .order_by(jr.c.line)
            )
        ]


def count(services: Services, table: str) -> int:
    t = data_table(table)
    with services.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t)).scalar_one())


def vacuums_and_analyzes(services: Services, table: str) -> tuple[int, int]:
    """How many times PostgreSQL has vacuumed and analyzed ``table`` on request."""
    with services.db.read() as conn:
        row = conn.execute(
            text("SELECT vacuum_count, analyze_count FROM pg_stat_user_tables WHERE relname = :t"),
            {"t": table},
        ).one()
    return int(row.vacuum_count), int(row.analyze_count)
