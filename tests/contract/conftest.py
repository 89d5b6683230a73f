"""One fixture per port, parametrised over every implementation of it.

Queues take the test's :class:`Clock`: a test moves time on instead of waiting for a lock to
expire. A real broker cannot be given a clock, so against one (see ``live.py``) moving time on
waits for real.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from common.blob import BlobStore
from common.blob.local import LocalBlobStore
from common.blob.memory import MemoryBlobStore
from common.queue import JobQueue
from common.queue.memory import MemoryJobQueue
from common.queue.sql import SqlJobQueue
from common.sql.db import Database, utcnow
from common.sql.migrate import upgrade
from tests.contract import live
from tests.support.services import postgres_database

QueueFactory = Callable[..., JobQueue]


class Clock:
    """Real time plus an offset the test moves on; a clock that ``sleeps`` waits instead."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps = False

    def now(self) -> datetime:
        """Naive UTC, as the queue port uses."""
        return utcnow() + timedelta(seconds=self.offset)

    def epoch(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if self.sleeps:
            time.sleep(seconds)
        else:
            self.offset += seconds


Backend = Callable[[Path, Clock], AbstractContextManager[Callable[[float, int], JobQueue]]]


@contextmanager
def _sql_queues(url: str, clock: Clock) -> Iterator[Callable[[float, int], JobQueue]]:
    db = Database.from_url(url)
    upgrade(db)
    try:
        yield lambda lock, max_deliveries: SqlJobQueue(
            db, f"q-{uuid.uuid4().hex[:8]}", lock, max_deliveries, clock=clock.now
        )
    finally:
        db.dispose()


@contextmanager
def _sqlite_queues(tmp_path: Path, clock: Clock) -> Iterator[Callable[[float, int], JobQueue]]:
    with _sql_queues(f"sqlite:///{tmp_path / 'queue.db'}", clock) as factory:
        yield factory


@contextmanager
def _postgres_queues(_tmp_path: Path, clock: Clock) -> Iterator[Callable[[float, int], JobQueue]]:
    with postgres_database() as url, _sql_queues(url, clock) as factory:
        yield factory


@contextmanager
def _servicebus_queues(_tmp_path: Path, clock: Clock) -> Iterator[Callable[[float, int], JobQueue]]:
    """The real azure-servicebus SDK against the test broker, which runs on the test's clock;
    one broker per test."""
    from common.queue.servicebus import ServiceBusJobQueue
    from tests.support.servicebus import servicebus_broker

    with servicebus_broker(clock=clock.epoch) as broker:

        def make(lock: float, max_deliveries: int) -> JobQueue:
            name = f"q-{uuid.uuid4().hex[:8]}"
            broker.configure_queue(name, lock_duration=lock, max_delivery_count=max_deliveries)
            return ServiceBusJobQueue.from_connection_string(
                broker.connection_string, name, lock, max_deliveries, retry_total=1
            )

        yield make


@contextmanager
def _memory_queues(_tmp_path: Path, clock: Clock) -> Iterator[Callable[[float, int], JobQueue]]:
    yield lambda lock, max_deliveries: MemoryJobQueue(lock, max_deliveries, clock=clock.now)


QUEUE_BACKENDS: dict[str, Backend] = {
    "memory": _memory_queues,
    "sqlite": _sqlite_queues,
    "postgresql": _postgres_queues,
    "servicebus": _servicebus_queues,
}
if os.environ.get(live.SERVICEBUS_ENV):
    QUEUE_BACKENDS["servicebus-live"] = live.servicebus_queues


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=sorted(QUEUE_BACKENDS))
def make_queue(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[QueueFactory]:
    """Call with (lock_duration_seconds, max_delivery_count) for a new, empty queue on
    ``clock``'s time."""
    made: list[JobQueue] = []
    clock.sleeps = request.param in live.REAL_TIME_BACKENDS
    with QUEUE_BACKENDS[request.param](tmp_path, clock) as factory:

        def build(lock: float = 5.0, max_deliveries: int = 10) -> JobQueue:
            queue = factory(lock, max_deliveries)
            made.append(queue)
            return queue

        yield build
        for queue in made:
            queue.close()


@contextmanager
def _local_blobs(tmp_path: Path) -> Iterator[BlobStore]:
    yield LocalBlobStore(tmp_path / "blobs")


@contextmanager
def _azurite_blobs(_tmp_path: Path) -> Iterator[BlobStore]:
    """The real SDK against the session's one Azurite, in containers of this test's own."""
    from tests.support.azurite import azurite_store

    with azurite_store() as store:
        yield store


@contextmanager
def _memory_blobs(_tmp_path: Path) -> Iterator[BlobStore]:
    yield MemoryBlobStore()


BLOB_BACKENDS: dict[str, Callable[[Path], AbstractContextManager[BlobStore]]] = {
    "memory": _memory_blobs,
    "local": _local_blobs,
    "azurite": _azurite_blobs,
}
if os.environ.get(live.STORAGE_ENV):
    BLOB_BACKENDS["azure-live"] = live.blob_store


@pytest.fixture(params=sorted(BLOB_BACKENDS))
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    with BLOB_BACKENDS[request.param](tmp_path) as store:
        yield store
