"""An API request rides out a database reconfiguration within its retry deadline and answers
503 with Retry-After past it. The database fails at its boundary (``Database.write`` raises
the error a dropped or reconfiguring server gives, as :func:`common.sql.db.translate_db_error`
makes it); the real outage is in ``tests/faults/test_outages.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from sqlalchemy import Connection

from common.bootstrap import Services
from common.errors import DatabaseUnavailable
from common.sql.migrate import upgrade
from tests.support.flow import api_client, service_set


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _failing_writes(services: Services, failures: int) -> None:
    real_write = services.db.write
    left = [failures]

    @contextmanager
    def write() -> Iterator[Connection]:
        if left[0] > 0:
            left[0] -= 1
            raise DatabaseUnavailable(
                "database temporarily unavailable: Database 'ingest' on server 'sql' is not "
                "currently available. Please retry the connection later. (40613)"
            )
        with real_write() as conn:
            yield conn

    services.db.write = write  # type: ignore[method-assign]


def _with_deadline(services: Services, time: FakeTime, seconds: float) -> None:
    services.request_retry = replace(
        services.request_retry,
        attempts=None,
        initial_wait_seconds=0.2,
        max_wait_seconds=5.0,
        deadline_seconds=seconds,
        sleep=time.sleep,
        clock=time.clock,
    )


BATCH = {"rows": [{"id": 7, "department": "Legal"}]}


def test_a_batch_waits_out_a_reconfiguration_shorter_than_the_deadline(tmp_path: Path) -> None:
    with service_set(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}") as services:
        upgrade(services.db)
        time = FakeTime()
        _with_deadline(services, time, 30.0)
        _failing_writes(services, 8)  # more failures than any fixed count of tries allowed

        with api_client(services) as client:
            answer = client.post("/tables/departments/rows", json=BATCH)

        assert answer.status_code == 200, answer.text
        assert answer.json()["inserted"] == 1
        assert len(time.waits) == 8 and sum(time.waits) <= 30.0


def test_past_the_deadline_a_batch_gets_503_with_retry_after(tmp_path: Path) -> None:
    with service_set(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}") as services:
        upgrade(services.db)
        time = FakeTime()
        _with_deadline(services, time, 30.0)
        _failing_writes(services, 10**6)

        with api_client(services) as client:
            answer = client.post("/tables/departments/rows", json=BATCH)

        assert answer.status_code == 503
        assert answer.headers["retry-after"].isdigit()
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert 25.0 < sum(time.waits) <= 30.0
