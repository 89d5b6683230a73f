"""``API_PROCESSES=2``: one port served by two API processes that share the load, count their
requests together on ``/metrics``, replace one that dies, and stop together."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import Started, api, children_of
from tests.support.services import postgres_database

BATCHES = 60
ROWS_PER_BATCH = 200
REPLACED_WITHIN_SECONDS = 30.0


def servers(started: Started) -> list[int]:
    """The API's server processes: its children but multiprocessing's resource tracker."""
    return [p for p in children_of(started.pid) if "resource_tracker" not in _cmdline(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post_batch(base_url: str, first_id: int) -> int:
    """One batch on a connection of its own, as many separate clients would send it."""
    rows = [
        {
            "id": first_id + i,
            "name": "Grace Hopper",
            "datetime": "2021-05-06T07:08:09Z",
            "department_id": 1,
            "job_id": 1,
        }
        for i in range(ROWS_PER_BATCH)
    ]
    answer = httpx.post(f"{base_url}/tables/hired_employees/rows", json={"rows": rows}, timeout=60)
    assert answer.status_code == 200, answer.text
    inserted: int = answer.json()["inserted"]
    return inserted


def request_count(client: httpx.Client, route: str) -> float:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return sum(
        s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if s.name == "ingest_api_request_seconds_count" and s.labels["route"] == route
    )


def test_two_api_processes_share_one_port_and_the_batches(tmp_path: Path) -> None:
    with postgres_database() as url, api(tmp_path, database_url=url, API_PROCESSES="2") as server:
        # Given an API started with two processes,
        processes = servers(server)
        assert len(processes) == 2, [_cmdline(p) for p in children_of(server.pid)]
        with server.client() as client:
            for table, row in (
                ("departments", {"id": 1, "department": "Research"}),
                ("jobs", {"id": 1, "job": "Engineer"}),
            ):
                assert client.post(f"/tables/{table}/rows", json={"rows": [row]}).status_code == 200
            before = {p: cpu_seconds(p) for p in processes}

            # when clients post batches at once, each on its own connection,
            with ThreadPoolExecutor(4) as pool:
                firsts = [1 + n * ROWS_PER_BATCH for n in range(BATCHES)]
                inserted = sum(pool.map(lambda first: post_batch(base_url(server), first), firsts))

            # then every row is in, both processes did part of the work,
            assert inserted == BATCHES * ROWS_PER_BATCH
            table = client.get("/tables/hired_employees").json()
            assert table["rows"] == BATCHES * ROWS_PER_BATCH, table
            worked = {p: cpu_seconds(p) - before[p] for p in processes}
            assert all(seconds > 0.05 for seconds in worked.values()), worked
            # and /metrics counts the requests of both.
            assert request_count(client, "/tables/{table}/rows") == BATCHES + 2


def test_a_killed_api_process_is_replaced(tmp_path: Path) -> None:
    with api(tmp_path, API_PROCESSES="2") as server:
        # Given an API with two processes,
        first, second = servers(server)

        # when one is killed outright,
        os.kill(first, signal.SIGKILL)

        # then another takes its place, and the API answers throughout.
        deadline = time.monotonic() + REPLACED_WITHIN_SECONDS
        with server.client() as client:
            while True:
                assert client.get("/healthz").status_code == 200
                now = servers(server)
                if len(now) == 2 and first not in now:
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"not replaced in {REPLACED_WITHIN_SECONDS} s: {now}")
                time.sleep(0.1)
        assert second in now


def base_url(server: Started) -> str:
    assert server.base_url is not None
    return server.base_url
