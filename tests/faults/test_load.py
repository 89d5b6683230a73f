"""Load: 50 clients posting 1000-row batches at the same time, four each. Every answer is a
success, and the table holds exactly the rows the answers acknowledged, no more and no fewer.

The clients send a fixed number of batches, not as many as fit in a time: the same load on any
machine, and the same concurrency (they start together, each batch as soon as the last one is
answered)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.faults.conftest import table_truth
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

CLIENTS = 50
BATCHES = 4
ROWS = 1000


def test_fifty_clients_at_once_lose_and_duplicate_nothing(fleet_factory: Any) -> None:
    with postgres_database() as url:
        fleet = fleet_factory(url)
        fleet.api()
        with httpx.Client(base_url=fleet.base_url, timeout=60) as client:
            client.post(
                "/tables/departments/rows",
                json={"rows": [{"id": i, "department": f"Department {i}"} for i in range(1, 13)]},
            )
            client.post(
                "/tables/jobs/rows",
                json={"rows": [{"id": i, "job": f"Job {i}"} for i in range(1, 184)]},
            )

        acknowledged: list[int] = []  # ids the service said it inserted
        statuses: Counter[int] = Counter()
        lock = threading.Lock()
        start_together = threading.Barrier(CLIENTS)

        def client_loop(n: int) -> None:
            with httpx.Client(base_url=fleet.base_url, timeout=120) as http:
                start_together.wait()
                for batch in range(BATCHES):
                    first = n * 100_000_000 + batch * ROWS + 1
                    rows = [
                        {
                            "id": first + i,
                            "name": "Grace Hopper",
                            "datetime": "2021-06-01T12:00:00+02:00",
                            "department_id": 1 + i % 12,
                            "job_id": 1 + i % 183,
                        }
                        for i in range(ROWS)
                    ]
                    answer = http.post("/tables/hired_employees/rows", json={"rows": rows})
                    with lock:
                        statuses[answer.status_code] += 1
                        if answer.status_code == 200:
                            assert answer.json()["inserted"] == ROWS
                            acknowledged.extend(range(first, first + ROWS))

        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert statuses == {200: CLIENTS * BATCHES}, statuses
        truth = table_truth(url, "hired_employees")
        assert truth.rows == truth.distinct_ids == len(acknowledged)
        assert truth.id_sum == sum(acknowledged)
