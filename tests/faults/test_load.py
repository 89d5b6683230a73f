"""Load: 50 clients posting 1000-row batches for 60 s. Every answer is a success, and the table
holds exactly the rows the answers acknowledged, no more and no fewer."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.faults.conftest import table_truth
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

CLIENTS = 50
SECONDS = 60.0
ROWS = 1000


def test_fifty_clients_for_a_minute_lose_and_duplicate_nothing(fleet_factory: Any) -> None:
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
        deadline = time.monotonic() + SECONDS

        def client_loop(n: int) -> None:
            batch = 0
            with httpx.Client(base_url=fleet.base_url, timeout=120) as http:
                while time.monotonic() < deadline:
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
                    batch += 1

        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert set(statuses) == {200}, statuses
        truth = table_truth(url, "hired_employees")
        assert truth.rows == truth.distinct_ids == len(acknowledged)
        assert truth.id_sum == sum(acknowledged)
