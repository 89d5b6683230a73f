"""Shared pieces of the fault-injection tests: a fleet of real processes that a test may kill
outright and start again, uploads over HTTP, and counts read straight from the database."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.support.processes import (
    BIND_ATTEMPTS,
    Started,
    free_port,
    lost_its_port,
    service_env,
    start,
)

FINISHED = ("succeeded", "failed")


@dataclass
class Fleet:
    """An API and any number of workers, started as real processes on one database.

    Each start gets its own log folder (``<root>/<name>-<n>``), so a killed process keeps its
    logs. Whatever is still running at the end is stopped, and killed if it does not stop.
    """

    root: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    processes: list[Started] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def blob_root(self) -> Path:
        return self.data_dir / "blobs" / "historic"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self, module: str, name: str, **extra: str) -> Started:
        n = self._counts.get(name, 0)
        self._counts[name] = n + 1
        env = service_env(
            self.data_dir,
            port=self.port,
            database_url=self.database_url,
            extra={**self.env, **extra},
        )
        started = start(
            module,
            self.root / f"{name}-{n}",
            env,
            base_url=self.base_url if module == "api" else None,
        )
        self.processes.append(started)
        return started

    def api(self, **extra: str) -> Started:
        """Start ``python -m api`` on the fleet's port and wait until it is ready; if another
        process took that port meanwhile, the fleet moves to another one."""
        for attempt in range(1, BIND_ATTEMPTS + 1):
            started = self._start("api", "api", **extra)
            if started.wait_listening(self.port):
                started.wait_ready()
                return started
            lost = lost_its_port(started)
            started.kill_group()
            if not lost or attempt == BIND_ATTEMPTS:
                pytest.fail(f"the API could not listen on {self.port}\n{started.stderr_tail()}")
            self.port = free_port()
        raise AssertionError("unreachable")

    def worker(self, slot: int = 0, *, wait: bool = True, **extra: str) -> Started:
        """Start ``python -m worker``; by default wait until it consumes."""
        started = self._start("worker", f"worker{slot}", **extra)
        if wait:
            started.wait_for_log("worker started")
        return started

    def workers(self, slot: int | None = None) -> list[Started]:
        """Every worker started so far (or those of one slot), oldest first."""
        prefix = "worker" if slot is None else f"worker{slot}-"
        return [
            p for p in self.processes if p.module == "worker" and p.folder.name.startswith(prefix)
        ]

    @staticmethod
    def kill(started: Started) -> None:
        """SIGKILL the process (and its group) and reap it."""
        with suppress(ProcessLookupError):
            os.killpg(started.pid, signal.SIGKILL)
        started.process.wait(timeout=10)

    def worker_log_events(self, event: str) -> list[tuple[str, dict[str, Any]]]:
        """Every JSON log line with ``event`` from every worker start: (folder name, line)."""
        found = []
        for started in self.workers():
            for line in started.stderr().splitlines():
                if event not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    found.append((started.folder.name, record))
        return found

    def close(self) -> None:
        for started in self.processes:
            if started.process.poll() is None:
                started.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for started in self.processes:
            with suppress(Exception):
                started.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            started.kill_group()
            started.close_files()


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Fleet] = []

    def make(database_url: str, **env: str) -> Fleet:
        fleet = Fleet(tmp_path / f"fleet{len(made)}", database_url, dict(env))
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()


# --- HTTP --------------------------------------------------------------------------------------


def upload(
    client: httpx.Client, table: str, body: bytes | Iterable[bytes], name: str, **params: str
) -> dict[str, Any]:
    """POST /uploads/{table} with a raw body; the job it answers with."""
    answer = client.post(
        f"/uploads/{table}",
        content=body,
        params={"filename": name, **params},
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code in (200, 202), answer.text
    job: dict[str, Any] = answer.json()
    return job


def file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


def get_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def wait_for_job(
    client: httpx.Client, job_id: str, timeout: float, *, why: str = ""
) -> dict[str, Any]:
    """Poll until the job finished; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with suppress(httpx.TransportError):
            job = get_job(client, job_id)
            if job["status"] in FINISHED:
                return job
        time.sleep(0.25)
    pytest.fail(f"job {job_id} not finished in {timeout:.0f} s: {job} {why}")


def dead_letters(client: httpx.Client) -> list[dict[str, Any]]:
    answer = client.get("/dead-letters", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def wait_for_dead_letter(client: httpx.Client, match: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Poll GET /dead-letters until one satisfies ``match``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for letter in dead_letters(client):
            if match(letter):
                return letter
        time.sleep(0.2)
    pytest.fail(f"no matching dead letter in {timeout:.0f} s: {dead_letters(client)}")


# --- the database itself ------------------------------------------------------------------------


@dataclass(frozen=True)
class TableTruth:
    rows: int
    distinct_ids: int
    id_sum: int


def table_truth(database_url: str, table: str) -> TableTruth:
    """COUNT(*), COUNT(DISTINCT id) and SUM(id) of a data table."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(f"SELECT COUNT(*), COUNT(DISTINCT id), COALESCE(SUM(id), 0) FROM {table}")
            ).one()
    finally:
        engine.dispose()
    return TableTruth(int(row[0]), int(row[1]), int(row[2]))


def query(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(text(sql), params)]
            conn.commit()
    finally:
        engine.dispose()
    return rows


def write_parents_and_upload(client: httpx.Client, folder: Path, timeout: float = 60.0) -> None:
    """Upload bench/generate's departments and jobs files and wait until both succeeded."""
    from bench.generate import DEPARTMENTS, JOBS, write_parents

    folder.mkdir(parents=True, exist_ok=True)
    write_parents(folder)
    for table, expected in (("departments", DEPARTMENTS), ("jobs", JOBS)):
        job = upload(client, table, (folder / f"{table}.csv").read_bytes(), f"{table}.csv")
        done = wait_for_job(client, job["job_id"], timeout)
        assert done["status"] == "succeeded", done
        assert done["rows_inserted"] == expected, done


# --- holding a table, to stop every worker inside its commit ------------------------------------

WAIT_FOR_BLOCKED_SECONDS = 60.0


@contextmanager
def table_held(database_url: str, table: str) -> Iterator[None]:
    """Hold ``LOCK TABLE … IN SHARE MODE`` on PostgreSQL for the block: reads go on, and a worker
    that writes rows waits inside its commit transaction, holding its part, until it is let go
    (or until the server stops, which ends the session holding the lock too)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))
            yield
            with suppress(DBAPIError):
                conn.rollback()
    finally:
        engine.dispose()


def wait_until_blocked(
    database_url: str, table: str, writers: int = 1, within: float = WAIT_FOR_BLOCKED_SECONDS
) -> None:
    """Until ``writers`` sessions wait for a lock on ``table`` (failing after ``within`` s)."""
    deadline = time.monotonic() + within
    waiting = 0
    while time.monotonic() < deadline:
        [(waiting,)] = query(
            database_url,
            "SELECT COUNT(*) FROM pg_locks WHERE NOT granted AND relation = CAST(:t AS regclass)",
            t=table,
        )
        if waiting >= writers:
            return
        time.sleep(0.05)
    pytest.fail(f"{waiting} of {writers} writers waited on {table} in {within} s")
