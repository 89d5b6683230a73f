"""The Service Bus adapter's own behaviour, with the real SDK against the test broker: what the
queue contract does not pin down (message ids, error translation, wiring from settings)."""

from __future__ import annotations

import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from common.db import utcnow
from common.errors import MessageNotFound, PermanentError, QueueUnavailable
from common.queue import OutgoingMessage, ReceivedMessage
from common.queue.servicebus import ServiceBusJobQueue
from common.settings import Settings
from tests.support.servicebus import servicebus_broker

if TYPE_CHECKING:
    from tests.support.servicebus_broker import Broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    with servicebus_broker() as running:
        yield running


@pytest.fixture
def queue(broker: Broker) -> Iterator[ServiceBusJobQueue]:
    broker.configure_queue("jobs", lock_duration=5.0, max_delivery_count=3)
    made = ServiceBusJobQueue.from_connection_string(
        broker.connection_string, "jobs", 5.0, 3, retry_total=0
    )
    yield made
    made.close()


def test_the_message_id_and_times_come_back_as_sent(queue: ServiceBusJobQueue) -> None:
    before = utcnow() - timedelta(seconds=1)
    queue.send([OutgoingMessage(b"{}", "job-1:0")])

    received = queue.receive(5)

    assert received is not None
    assert received.message_id == "job-1:0"
    assert received.enqueued_at.tzinfo is None and received.locked_until.tzinfo is None
    assert before <= received.enqueued_at <= received.locked_until
    assert received.locked_until - received.enqueued_at <= timedelta(seconds=6)
    queue.complete(received)


def test_a_second_send_with_the_same_message_id_is_dropped(queue: ServiceBusJobQueue) -> None:
    queue.send([OutgoingMessage(b"first", "same-id")])
    queue.send([OutgoingMessage(b"second", "same-id")])

    assert queue.active_count() == 1


def test_a_resubmitted_dead_letter_gets_an_id_of_its_own(queue: ServiceBusJobQueue) -> None:
    queue.send([OutgoingMessage(b"body", "original")])
    received = queue.receive(5)
    assert received is not None
    queue.dead_letter(received, "Broken", "fixed since")
    [letter], _ = queue.list_dead_letters(10, 0)

    queue.resubmit_dead_letter(letter.id)

    again = queue.receive(5)
    assert again is not None
    assert again.message_id == f"original:resubmit:{letter.id}"
    assert letter.dead_lettered_at is None  # Service Bus records no dead-lettering time


def test_an_unknown_dead_letter_id_is_not_found(queue: ServiceBusJobQueue) -> None:
    with pytest.raises(MessageNotFound):
        queue.get_dead_letter("not-a-number")
    with pytest.raises(MessageNotFound):
        queue.purge_dead_letter("42")


def test_the_lock_is_renewed_from_another_thread_while_receiving(
    queue: ServiceBusJobQueue,
) -> None:
    queue.send([OutgoingMessage(b"long", "long")])
    received = queue.receive(5)
    assert received is not None
    renewed: list[object] = []

    def renew() -> None:
        for _ in range(3):
            renewed.append(queue.renew_lock(received))

    thread = threading.Thread(target=renew)
    thread.start()
    assert queue.receive(0.5) is None
    thread.join()

    assert len(renewed) == 3
    queue.complete(received)


def test_a_message_from_elsewhere_cannot_be_settled(queue: ServiceBusJobQueue) -> None:
    foreign = ReceivedMessage("m", b"", 1, 1, utcnow(), utcnow(), "token", handle=17)

    with pytest.raises(PermanentError):
        queue.complete(foreign)


def test_a_stopped_broker_is_unavailable_and_the_key_stays_secret(broker: Broker) -> None:
    queue = ServiceBusJobQueue.from_connection_string(
        broker.connection_string, "jobs", retry_total=0
    )
    queue.ping()
    broker.stop()

    for action in (queue.ping, lambda: queue.send([OutgoingMessage(b"x", "x")])):
        with pytest.raises(QueueUnavailable) as caught:
            action()
        assert "dGVzdA==" not in str(caught.value)
    queue.close()
    # The SDK (pyamqp) does not close the socket of a connection that failed on read
    # (Connection._disconnect skips the transport once the state is END); collect it here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_nothing_connects_until_first_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: a connection would be refused
        connection_string = (
            f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=k;"
            "SharedAccessKey=c2VjcmV0;UseDevelopmentEmulator=true"
        )
        queue = ServiceBusJobQueue.from_connection_string(connection_string, "q", retry_total=0)

        with pytest.raises(QueueUnavailable) as caught:
            queue.receive(0.5)
        assert "c2VjcmV0" not in str(caught.value)
        queue.close()


def test_from_settings_uses_the_connection_string_and_queue_settings(broker: Broker) -> None:
    broker.configure_queue("from-settings", lock_duration=7.0, max_delivery_count=4)
    settings = Settings.model_validate(
        {
            "servicebus_connection_string": broker.connection_string,
            "SERVICEBUS_QUEUE_NAME": "from-settings",
            "lock_duration_seconds": 7.0,
            "max_delivery_count": 4,
        }
    )
    assert settings.queue_backend == "servicebus"

    queue = ServiceBusJobQueue.from_settings(settings)
    try:
        assert (queue.queue_name, queue.lock_duration_seconds, queue.max_delivery_count) == (
            "from-settings",
            7.0,
            4,
        )
        queue.send([OutgoingMessage(b"hello", "hello")])
        received = queue.receive(5)
        assert received is not None and received.body == b"hello"
        queue.complete(received)
    finally:
        queue.close()
