"""The contract suites against real servers, for whoever can run them (``make test-live``):
the Service Bus emulator of the compose stack (``TEST_SERVICEBUS_CONNECTION_STRING``) and a
storage account or the stack's Azurite (``TEST_AZURE_STORAGE_CONNECTION_STRING``).

A real broker has fixed queues: ``deploy/servicebus-emulator.json`` declares one per
(lock duration, max delivery count) the contract asks for. Each test empties its queue first,
and a real broker keeps real time, so moving the clock on waits.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from common.blob import BlobStore
from common.queue import JobQueue

SERVICEBUS_ENV = "TEST_SERVICEBUS_CONNECTION_STRING"
STORAGE_ENV = "TEST_AZURE_STORAGE_CONNECTION_STRING"
REAL_TIME_BACKENDS = frozenset({"servicebus-live"})
EMULATOR_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "servicebus-emulator.json"
CONTRACT_PREFIX = "contract"


def _duration_seconds(iso: str) -> float:
    found = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", iso)
    if not found:
        raise ValueError(f"not a PTnHnMnS duration: {iso}")
    hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return float(timedelta(hours=hours, minutes=minutes, seconds=seconds).total_seconds())


def contract_queues() -> dict[tuple[float, int], str]:
    """(lock seconds, max delivery count) -> the emulator queue declared for it."""
    config = json.loads(EMULATOR_CONFIG.read_text())
    [namespace] = config["UserConfig"]["Namespaces"]
    return {
        (
            _duration_seconds(q["Properties"]["LockDuration"]),
            int(q["Properties"]["MaxDeliveryCount"]),
        ): q["Name"]
        for q in namespace["Queues"]
        if q["Name"].startswith(CONTRACT_PREFIX)
    }


def empty_queue(connection_string: str, queue: str, lock_seconds: float = 60.0) -> None:
    """Remove whatever an earlier test left: scheduled messages are cancelled, the others and the
    dead letters received and completed. A message still locked by an earlier receiver comes
    back when its lock expires, so this waits up to a lock's duration for it."""
    from azure.servicebus import ServiceBusClient, ServiceBusMessageState, ServiceBusSubQueue

    deadline = time.monotonic() + lock_seconds + 5
    with ServiceBusClient.from_connection_string(connection_string) as client:
        with client.get_queue_receiver(queue) as peeker:
            scheduled = [
                m.sequence_number
                for m in peeker.peek_messages(250)
                if m.state == ServiceBusMessageState.SCHEDULED and m.sequence_number is not None
            ]
        if scheduled:
            with client.get_queue_sender(queue) as sender:
                sender.cancel_scheduled_messages(scheduled)
        for sub_queue in (None, ServiceBusSubQueue.DEAD_LETTER):
            with client.get_queue_receiver(queue, sub_queue=sub_queue) as receiver:
                while receiver.peek_messages(1, sequence_number=1):
                    if time.monotonic() > deadline:
                        raise AssertionError(f"queue {queue} cannot be emptied")
                    for message in receiver.receive_messages(100, max_wait_time=1):
                        receiver.complete_message(message)


@contextmanager
def servicebus_queues(_tmp_path: Path, _clock: Any) -> Iterator[Callable[[float, int], JobQueue]]:
    from common.queue.servicebus import ServiceBusJobQueue

    connection_string = os.environ[SERVICEBUS_ENV]
    declared = contract_queues()

    def make(lock: float, max_deliveries: int) -> JobQueue:
        name = declared.get((lock, max_deliveries))
        if name is None:
            pytest.skip(f"no emulator queue has a {lock} s lock and {max_deliveries} deliveries")
        empty_queue(connection_string, name, lock)
        return ServiceBusJobQueue.from_connection_string(
            connection_string, name, lock, max_deliveries
        )

    yield make


@contextmanager
def blob_store(_tmp_path: Path) -> Iterator[BlobStore]:
    """The storage account in containers of this test's own, deleted afterwards."""
    from common.blob.azure import AzureBlobStore
    from tests.support.azurite import FreshContainers

    store = AzureBlobStore.from_connection_string(os.environ[STORAGE_ENV])
    fresh = FreshContainers(store)
    try:
        yield fresh
    finally:
        service = store._service  # the SDK's BlobServiceClient
        for container in service.list_containers(name_starts_with=""):
            if container.name.endswith(fresh.suffix):
                with suppress(Exception):
                    service.delete_container(container.name)
        store.close()
