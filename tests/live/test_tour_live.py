"""The new user's tour (``tests/e2e/test_tour.py``) against the compose stack's servers: SQL
Server (``TEST_MSSQL_URL``), the Service Bus emulator (``TEST_SERVICEBUS_CONNECTION_STRING``,
its ``ingest-jobs`` queue) and Azurite or a storage account
(``TEST_AZURE_STORAGE_CONNECTION_STRING``), with the real supervisor and two workers.

The database's tables and the queue are emptied first; the blobs go to containers of this run's
own. The emulator takes about ten connections in all: this run holds at most one API's and two
workers' (see docs/deployment.md).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from common.sql.db import Database
from common.sql.migrate import upgrade
from common.sql.schema import metadata
from tests.contract.live import empty_queue
from tests.e2e.test_tour import test_tour  # noqa: F401 - the tour, on the fixture below
from tests.support.processes import Started, supervisor

QUEUE = "ingest-jobs"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Started]:
    database_url = os.environ["TEST_MSSQL_URL"]
    servicebus = os.environ["TEST_SERVICEBUS_CONNECTION_STRING"]
    db = Database.from_url(database_url)
    try:
        upgrade(db)
        with db.write() as conn:
            for table in reversed(metadata.sorted_tables):
                if table.name != "alembic_version":
                    conn.execute(delete(table))
    finally:
        db.dispose()
    empty_queue(servicebus, QUEUE)
    suffix = uuid.uuid4().hex[:8]
    with supervisor(
        tmp_path,
        workers=2,
        database_url=database_url,
        AZURE_STORAGE_CONNECTION_STRING=os.environ["TEST_AZURE_STORAGE_CONNECTION_STRING"],
        BLOB_CONTAINER_NAME_HISTORIC=f"historic-{suffix}",
        BLOB_CONTAINER_NAME_BACKUP=f"backup-{suffix}",
        SERVICEBUS_CONNECTION_STRING=servicebus,
        SERVICEBUS_QUEUE_NAME=QUEUE,
        LOCK_DURATION_SECONDS="60",
        MAX_DELIVERY_COUNT="10",
    ) as started:
        yield started
