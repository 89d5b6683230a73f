"""The Service Bus adapter's own behaviour, with the real SDK against the test broker: what the
queue contract does not pin down (message ids, error translation, wiring from settings)."""

from __future__ import annotations

import gc
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from common.bootstrap import build_services
from common.errors import MessageNotFound, NotAuthorised, PermanentError, QueueUnavailable
from common.model.messages import JobMessage
from common.queue import OutgoingMessage, ReceivedMessage
from common.queue.servicebus import ServiceBusJobQueue
from common.settings import Settings
from common.sql.db import utcnow
from common.sql.migrate import upgrade
from tests.conftest import NO_WAIT_RETRY, make_settings
from tests.support.servicebus import servicebus_broker
from tests.support.servicebus_broker.admin import AdminEndpoint, admin_client, admin_endpoint

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


def test_a_send_only_identity_sends_and_is_ready_without_opening_a_receiver(
    broker: Broker, queue: ServiceBusJobQueue
) -> None:
    broker.add_key("api", {"Send"})  # "Azure Service Bus Data Sender" alone
    sender_only = ServiceBusJobQueue.from_connection_string(
        broker.connection_string_for("api"), "jobs", retry_total=0
    )
    try:
        sender_only.ping()
        sender_only.send([OutgoingMessage(b"upload", "job-2:0")])
        with pytest.raises(NotAuthorised, match="not authorised"):
            sender_only.receive(0.2)
    finally:
        sender_only.close()

    received = queue.receive(5)
    assert received is not None and received.body == b"upload"
    queue.complete(received)


def test_a_send_larger_than_one_batch_goes_in_as_many_as_it_needs(
    broker: Broker, queue: ServiceBusJobQueue
) -> None:
    # One message per part of a large file with a small PART_BYTES: far over the 256 KB a
    # Standard-tier batch (and the broker's link) takes.
    messages = [JobMessage(str(uuid.uuid4()), part).first_send() for part in range(3000)]
    assert sum(len(m.body) + len(m.message_id) for m in messages) > 256 * 1024

    queue.send(messages)

    stored = broker.store.entity("jobs").messages.values()
    assert sorted(m.message_id or "" for m in stored) == sorted(m.message_id for m in messages)


def _dead_letter_all(queue: ServiceBusJobQueue, count: int) -> None:
    queue.send([OutgoingMessage(f"d{i}".encode(), f"d{i}") for i in range(count)])
    for _ in range(count):
        received = queue.receive(5)
        assert received is not None
        queue.dead_letter(received, "Broken", "for the test")


@pytest.fixture
def admin(broker: Broker) -> Iterator[AdminEndpoint]:
    with admin_endpoint(broker.store, broker.rules) as endpoint:
        yield endpoint


def _queue_with_admin(broker: Broker, admin: AdminEndpoint, key: str) -> ServiceBusJobQueue:
    connection_string = broker.connection_string_for(key)
    return ServiceBusJobQueue.from_connection_string(
        connection_string,
        "jobs",
        5.0,
        3,
        admin_factory=lambda: admin_client(connection_string, admin.url),
        retry_total=0,
    )


def test_counts_come_from_the_runtime_properties_without_peeking(
    broker: Broker, admin: AdminEndpoint
) -> None:
    queue = _queue_with_admin(broker, admin, "test")
    try:
        _dead_letter_all(queue, 2)
        queue.send([OutgoingMessage(f"w{i}".encode(), f"w{i}") for i in range(3)])
        queue.send([OutgoingMessage(b"s", "s", utcnow() + timedelta(minutes=5))])
        locked = queue.receive(5)
        assert locked is not None
        peeked_before = broker.store.peeked

        assert queue.active_count() == 4  # two waiting, one locked, one scheduled
        assert queue.list_dead_letters(limit=0, offset=0) == ([], 2)
        assert broker.store.peeked == peeked_before
        assert admin.requests == 2
    finally:
        queue.close()


def test_a_page_of_dead_letters_reads_no_dead_letter_past_it(
    broker: Broker, admin: AdminEndpoint
) -> None:
    queue = _queue_with_admin(broker, admin, "test")
    try:
        _dead_letter_all(queue, 20)
        peeked_before = broker.store.peeked

        page, total = queue.list_dead_letters(limit=2, offset=4)

        assert total == 20
        assert [letter.body for letter in page] == [b"d4", b"d5"]
        # Peeks answer short pages here, so reading to the page's end may read one page more.
        assert broker.store.peeked - peeked_before <= 4 + 2 + broker.store.peek_page
    finally:
        queue.close()


def test_without_the_manage_claim_counts_fall_back_to_peeking_and_stop_asking(
    broker: Broker, admin: AdminEndpoint
) -> None:
    broker.add_key("worker", {"Send", "Listen"})  # Data Sender + Data Receiver, not Owner
    queue = _queue_with_admin(broker, admin, "worker")
    try:
        _dead_letter_all(queue, 5)
        queue.send([OutgoingMessage(f"w{i}".encode(), f"w{i}") for i in range(7)])

        assert queue.active_count() == 7
        assert queue.list_dead_letters(limit=2, offset=0)[1] == 5
        assert admin.requests == 1  # refused once (401), not asked again
    finally:
        queue.close()


def _settles_at_most(broker: Broker, connections: int) -> bool:
    """Whether the broker's open connections fall to ``connections`` (a closed one may take a
    moment to be seen as closed)."""
    deadline = time.monotonic() + 5
    while broker.open_connections > connections:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_one_instance_holds_at_most_its_documented_connections(
    broker: Broker, queue: ServiceBusJobQueue
) -> None:
    queue.send([OutgoingMessage(b"a", "a"), OutgoingMessage(b"b", "b")])
    first = queue.receive(5)
    assert first is not None
    queue.renew_lock(first)
    queue.dead_letter(first, "Broken", "for the test")
    [letter], _ = queue.list_dead_letters(10, 0)
    queue.resubmit_dead_letter(letter.id)
    queue.active_count()
    queue.peek_active()
    queue.ping()
    queue.ping()
    second = queue.receive(5)
    assert second is not None
    queue.complete(second)

    assert _settles_at_most(broker, ServiceBusJobQueue.MAX_CONNECTIONS)


def test_an_api_whose_identity_may_not_read_dead_letters_says_so_in_a_problem(
    broker: Broker, queue: ServiceBusJobQueue, tmp_path: Path
) -> None:
    # Given an API whose Service Bus identity may only send (the "Data Sender" role)
    broker.add_key("api", {"Send"})
    sender_only = ServiceBusJobQueue.from_connection_string(
        broker.connection_string_for("api"), "jobs", retry_total=0
    )
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    services = build_services(settings, queue=sender_only, retry=NO_WAIT_RETRY)
    upgrade(services.db)
    try:
        # When the dead letters are listed, then the answer is a problem naming the queue
        # and what an operator does about it, not an internal error
        with TestClient(create_app(settings, services)) as client:
            answer = client.get("/dead-letters")
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["dependency"] == "queue"
        assert "refused the service's identity" in problem["detail"]
        assert "grant" in problem["detail"]
    finally:
        services.close()
