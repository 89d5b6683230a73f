"""The job queue on Azure Service Bus: peek-lock receive, lock renewal, dead-letter sub-queue.

One client and at most three handlers (sender, receiver, dead-letter receiver), each opened on
first use, each its own AMQP connection; sending never opens a receiver, so a send-only
identity can send. The SDK's handlers are not thread-safe and the worker renews locks from a
background thread, so every SDK call holds one lock. SDK errors become the project's errors
here and nowhere else (``servicebus_mapping``). Counts come from the administration API where
the identity may read them (``servicebus_counts``), else from peeking.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azure.servicebus import (
    ServiceBusClient,
    ServiceBusReceivedMessage,
    ServiceBusReceiver,
    ServiceBusSender,
    ServiceBusSubQueue,
)
from azure.servicebus.exceptions import MessageSizeExceededError

from common.errors import PermanentError, QueueUnavailable
from common.queue import DeadLetter, OutgoingMessage, ReceivedMessage, fit_dead_letter_text
from common.queue import servicebus_browse as browse
from common.queue import servicebus_factories as factories
from common.queue import servicebus_mapping as mapping
from common.queue.servicebus_counts import RuntimeCounts
from common.queue.servicebus_factories import AdminFactory

if TYPE_CHECKING:
    from common.settings import Settings

_MIN_WAIT = 0.05


class ServiceBusJobQueue:
    """A :class:`~common.queue.JobQueue` on one Service Bus queue.

    ``lock_duration_seconds`` and ``max_delivery_count`` describe the queue as configured in
    Service Bus (the broker enforces them); they must match it. ``admin_factory`` makes the
    administration client that counts messages; without one, counting peeks.
    """

    # AMQP connections one instance holds at most: the sender, the receiver and the
    # dead-letter receiver (the Service Bus emulator accepts about ten in all).
    MAX_CONNECTIONS = 3

    def __init__(
        self,
        client_factory: Callable[[], ServiceBusClient],
        queue_name: str,
        lock_duration_seconds: float = 60.0,
        max_delivery_count: int = 10,
        *,
        admin_factory: AdminFactory | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.queue_name = queue_name
        self.lock_duration_seconds = lock_duration_seconds
        self.max_delivery_count = max_delivery_count
        self._client_factory = client_factory
        self._counts = RuntimeCounts(admin_factory, queue_name)
        self._secrets = secrets
        self._lock = threading.RLock()
        self._client: ServiceBusClient | None = None
        self._sender: ServiceBusSender | None = None
        self._receiver: ServiceBusReceiver | None = None
        self._dead_letters: ServiceBusReceiver | None = None

    @classmethod
    def from_connection_string(
        cls,
        connection_string: str,
        queue_name: str,
        lock_duration_seconds: float = 60.0,
        max_delivery_count: int = 10,
        *,
        admin_factory: AdminFactory | None = None,
        **client_options: Any,
    ) -> ServiceBusJobQueue:
        """``client_options`` go to the SDK client (e.g. ``retry_total``); without an
        ``admin_factory``, one is made from the connection string (none for the emulator)."""
        made = factories.by_connection_string(connection_string, **client_options)
        return cls(
            made.client,
            queue_name,
            lock_duration_seconds,
            max_delivery_count,
            admin_factory=admin_factory or made.admin,
            secrets=made.secrets,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceBusJobQueue:
        """By connection string, or by namespace with ``DefaultAzureCredential``."""
        if settings.servicebus_connection_string is not None:
            return cls.from_connection_string(
                settings.servicebus_connection_string.get_secret_value(),
                settings.queue_name,
                settings.lock_duration_seconds,
                settings.max_delivery_count,
            )
        namespace = settings.servicebus_fully_qualified_namespace
        if not namespace:
            raise PermanentError(
                "Service Bus is not configured: set SERVICEBUS_CONNECTION_STRING or "
                "SERVICEBUS_FULLY_QUALIFIED_NAMESPACE"
            )
        made = factories.by_namespace(namespace)
        return cls(
            made.client,
            settings.queue_name,
            settings.lock_duration_seconds,
            settings.max_delivery_count,
            admin_factory=made.admin,
        )

    # Handlers, made on first use; any connection failure drops them all so the next call
    # starts over on a fresh connection.

    def _get_client(self) -> ServiceBusClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _get_sender(self) -> ServiceBusSender:
        if self._sender is None:
            sender = self._get_client().get_queue_sender(self.queue_name)
            # Entering a handler opens it (the SDK's context-manager protocol).
            self._sender = sender.__enter__()
        return self._sender

    def _get_receiver(self) -> ServiceBusReceiver:
        if self._receiver is None:
            receiver = self._get_client().get_queue_receiver(self.queue_name)
            self._receiver = receiver.__enter__()
        return self._receiver

    def _get_dead_letters(self) -> ServiceBusReceiver:
        if self._dead_letters is None:
            receiver = self._get_client().get_queue_receiver(
                self.queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER
            )
            self._dead_letters = receiver.__enter__()
        return self._dead_letters

    def _reset(self) -> None:
        opened = [h for h in (self._sender, self._receiver, self._dead_letters) if h is not None]
        client = self._client
        self._client = self._sender = self._receiver = self._dead_letters = None
        # Closing a broken connection may fail; there is nothing left to keep.
        with suppress(Exception):
            mapping.in_parallel([h.close for h in opened])  # each close waits on its own link
        if client is not None:
            with suppress(Exception):
                client.close()

    @contextmanager
    def _sdk(self, what: str) -> Iterator[None]:
        """Hold the lock and translate whatever the SDK raises."""
        with self._lock:
            try:
                yield
            except Exception as exc:
                error = mapping.translate(
                    exc, f"{what} on queue {self.queue_name!r}", self._secrets
                )
                if isinstance(error, QueueUnavailable):
                    self._reset()
                raise error from exc

    # The port.

    def send(self, messages: list[OutgoingMessage]) -> None:
        if not messages:
            return
        with self._sdk("send"):
            sender = self._get_sender()
            batch = sender.create_message_batch()  # as large as the tier allows (256 KB Standard)
            for message in messages:
                outgoing = mapping.outgoing(message)
                try:
                    batch.add_message(outgoing)
                except MessageSizeExceededError:
                    if len(batch) == 0:
                        raise  # one message larger than the tier allows
                    sender.send_messages(batch)
                    batch = sender.create_message_batch()
                    batch.add_message(outgoing)
            if len(batch):
                sender.send_messages(batch)

    def receive(self, max_wait_seconds: float) -> ReceivedMessage | None:
        with self._sdk("receive"):
            found = self._get_receiver().receive_messages(
                max_message_count=1, max_wait_time=max(max_wait_seconds, _MIN_WAIT)
            )
        if not found:
            return None
        return mapping.received(found[0], self.lock_duration_seconds)

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        handle = mapping.handle_of(message)
        with self._sdk("renew lock"):
            until = self._get_receiver().renew_message_lock(handle)
        return mapping.naive_utc(until) or until

    def complete(self, message: ReceivedMessage) -> None:
        handle = mapping.handle_of(message)
        with self._sdk("complete"):
            self._get_receiver().complete_message(handle)

    def abandon(self, message: ReceivedMessage) -> None:
        handle = mapping.handle_of(message)
        with self._sdk("abandon"):
            self._get_receiver().abandon_message(handle)

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        handle = mapping.handle_of(message)
        with self._sdk("dead-letter"):
            self._get_receiver().dead_letter_message(
                handle,
                reason=fit_dead_letter_text(reason),
                error_description=fit_dead_letter_text(description),
            )

    def list_dead_letters(self, limit: int, offset: int) -> tuple[list[DeadLetter], int]:
        counts = self._counts.get()
        with self._sdk("list dead letters"):
            if counts is None:  # only peeking them all counts them
                every = list(browse.peek_all(self._get_dead_letters()))
                page = every[offset : offset + limit] if limit > 0 else []
                total = len(every)
            else:
                total = counts.dead_lettered
                page = []
                if offset < total:
                    page = browse.peek_page(self._get_dead_letters(), limit, offset)
        return [mapping.dead_letter(m) for m in page], total

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        seq = browse.sequence_number(dead_letter_id)
        with self._sdk("get dead letter"):
            return mapping.dead_letter(browse.peek_one(self._get_dead_letters(), seq))

    def resubmit_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        seq = browse.sequence_number(dead_letter_id)

        def send_copy(letter: ServiceBusReceivedMessage) -> None:
            self._get_sender().send_messages(mapping.resubmitted(letter, dead_letter_id))

        with self._sdk("resubmit dead letter"):
            browse.peek_one(self._get_dead_letters(), seq)
            return mapping.dead_letter(browse.take(self._get_dead_letters(), seq, send_copy))

    def purge_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        seq = browse.sequence_number(dead_letter_id)
        with self._sdk("purge dead letter"):
            browse.peek_one(self._get_dead_letters(), seq)
            taken = browse.take(self._get_dead_letters(), seq, lambda _letter: None)
        return mapping.dead_letter(taken)

    def active_count(self) -> int:
        counts = self._counts.get()
        if counts is not None:
            return counts.active + counts.scheduled
        with self._sdk("count messages"):
            return sum(1 for _ in browse.peek_all(self._get_receiver()))

    def peek_active(self) -> list[bytes]:
        with self._sdk("peek messages"):
            return [mapping.body_of(m) for m in browse.peek_all(self._get_receiver())]

    def ping(self) -> None:
        """Open the sender's link anew: the broker answers the attach only for a queue that
        exists and an identity that may send, which is all a sending process needs."""
        with self._sdk("ping"):
            sender, self._sender = self._sender, None
            if sender is not None:
                with suppress(Exception):  # a broken link is what the new one replaces
                    sender.close()
            self._get_sender()

    def close(self) -> None:
        with self._lock:
            self._reset()
        self._counts.close()
