"""``/readyz`` names the part that is down: the blob store (Azurite stopped) or the queue (the
Service Bus broker stopped), while the others stay ``ok``. (The database: tests/faults.)"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from common.blob import BlobStore
from common.blob.azure import AzureBlobStore
from common.bootstrap import build_services
from common.queue import JobQueue
from common.queue.servicebus import ServiceBusJobQueue
from tests.conftest import NO_WAIT_RETRY, make_settings
from tests.support.azurite import azurite
from tests.support.flow import api_client
from tests.support.servicebus import servicebus_broker


@contextmanager
def api_on(
    tmp_path: Path, *, blob: BlobStore | None = None, queue: JobQueue | None = None
) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'ready.db'}")
    services = build_services(settings, blob=blob, queue=queue, retry=NO_WAIT_RETRY)
    try:
        with api_client(services) as client:
            yield client
    finally:
        services.close()


def checks_of(answer: httpx.Response) -> dict[str, Any]:
    checks: dict[str, Any] = answer.json()["checks"]
    return checks


def test_readiness_names_a_blob_store_that_is_down(tmp_path: Path) -> None:
    with azurite(tmp_path) as server:
        # Azurite's connection is refused at once; the client's retries are not under test.
        store = AzureBlobStore.from_connection_string(server.connection_string, retry_total=0)
        with api_on(tmp_path, blob=store) as client:
            assert client.get("/readyz").status_code == 200

            server.stop()
            down = client.get("/readyz")

            assert down.status_code == 503
            assert down.json()["status"] == "unavailable"
            checks = checks_of(down)
            assert (checks["database"], checks["queue"]) == ("ok", "ok")
            assert checks["blob_store"] == "unavailable"

            server.start()  # the same port, empty again: the service creates nothing by itself
            store.ensure_container("historic")
            store.ensure_container("backup")
            assert client.get("/readyz").status_code == 200


def test_readiness_names_a_queue_that_is_down(tmp_path: Path) -> None:
    with servicebus_broker() as broker:
        broker.configure_queue("ingest-jobs", lock_duration=5.0, max_delivery_count=3)
        queue = ServiceBusJobQueue.from_connection_string(
            broker.connection_string, "ingest-jobs", 5.0, 3, retry_total=0
        )
        with api_on(tmp_path, queue=queue) as client:
            assert client.get("/readyz").status_code == 200

            broker.stop()
            down = client.get("/readyz")

            assert down.status_code == 503
            checks = checks_of(down)
            assert (checks["database"], checks["blob_store"]) == ("ok", "ok")
            assert checks["queue"] == "unavailable"
    # The SDK (pyamqp) leaves the socket of a connection that failed on read open
    # (see test_servicebus_adapter.py); collect it here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
