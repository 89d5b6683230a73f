"""The job queue on Azure Service Bus: peek-lock receive, lock renewal, dead-letter sub-queue.

One client, one sender, one receiver and one dead-letter receiver per instance, each made on
first use; nothing connects at construction. The SDK's handlers are not thread-safe and the
worker renews locks from a background thread, so every SDK call holds one lock. SDK errors
become the project's errors here and nowhere else (see ``servicebus_mapping``).
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

from common.errors import MessageNotFound, PermanentError, QueueUnavailable
from common.queue import DeadLetter, OutgoingMessage, ReceivedMessage
from common.queue import servicebus_mapping as mapping

if TYPE_CHECKING:
    from common.settings import Settings

_PEEK_PAGE = 250
_DEAD_LETTER_RECEIVE_WAIT = 1.0
_MIN_WAIT = 0.05


class ServiceBusJobQueue:
    """A :class:`~common.queue.JobQueue` on one Service Bus queue.

    ``lock_duration_seconds`` and ``max_delivery_count`` describe the queue as configured in
    Service Bus (the broker enforces them); they must match it.
    """

    def __init__(
        self,
        client_factory: Callable[[], ServiceBusClient],
        queue_name: str,
        lock_duration_seconds: float = 60.0,
        max_delivery_count: int = 10,
        *,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.queue_name = queue_name
        self.lock_duration_seconds = lock_duration_seconds
        self.max_delivery_count = max_delivery_count
        self._client_factory = client_factory
        self._secrets = secrets
        self._lock = threading.RLock()
        self._opened: list[ServiceBusSender | ServiceBusReceiver] = []
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
        **client_options: Any,
    ) -> ServiceBusJobQueue:
        """``client_options`` go to the SDK client (e.g. ``retry_total``)."""
        return cls(
            lambda: ServiceBusClient.from_connection_string(connection_string, **client_options),
            queue_name,
            lock_duration_seconds,
            max_delivery_count,
            secrets=mapping.secret_parts(connection_string),
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

        def client() -> ServiceBusClient:
            from azure.identity import DefaultAzureCredential

            return ServiceBusClient(namespace, DefaultAzureCredential())

        return cls(
            client, settings.queue_name, settings.lock_duration_seconds, settings.max_delivery_count
        )

    # Handlers, made on first use; any connection failure drops them all so the next call
    # starts over on a fresh connection.

    def _get_client(self) -> ServiceBusClient:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _open_main(self) -> tuple[ServiceBusSender, ServiceBusReceiver]:
        """The sender and the receiver, opened together on first use: each has a connection of
        its own that the SDK sets up one frame per poll, so opening both at once halves the wait."""
        if self._sender is None or self._receiver is None:
            client = self._get_client()
            sender = client.get_queue_sender(self.queue_name)
            receiver = client.get_queue_receiver(self.queue_name)
            self._opened += [sender, receiver]
            # Entering a handler opens it (the SDK's context-manager protocol).
            mapping.in_parallel([sender.__enter__, receiver.__enter__])
            self._sender, self._receiver = sender, receiver
        return self._sender, self._receiver

    def _get_sender(self) -> ServiceBusSender:
        return self._open_main()[0]

    def _get_receiver(self) -> ServiceBusReceiver:
        return self._open_main()[1]

    def _get_dead_letters(self) -> ServiceBusReceiver:
        if self._dead_letters is None:
            receiver = self._get_client().get_queue_receiver(
                self.queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER
            )
            self._opened.append(receiver)
            self._dead_letters = receiver.__enter__()
        return self._dead_letters

    def _reset(self) -> None:
        opened, client = self._opened, self._client
        self._opened = []
        self._client = self._sender = self._receiver = self._dead_letters = None
        # Closing a broken connection may fail; there is nothing left to keep.
        with suppress(Exception):
            mapping.in_parallel([h.close for h in opened])  # each close waits on its own connection
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

    @staticmethod
    def _handle(message: ReceivedMessage) -> ServiceBusReceivedMessage:
        if not isinstance(message.handle, ServiceBusReceivedMessage):
            raise PermanentError(f"message {message.message_id} was not received from Service Bus")
        return message.handle

    # The port.

    def send(self, messages: list[OutgoingMessage]) -> None:
        if not messages:
            return
        with self._sdk("send"):
            self._get_sender().send_messages([mapping.outgoing(m) for m in messages])

    def receive(self, max_wait_seconds: float) -> ReceivedMessage | None:
        with self._sdk("receive"):
            receiver = self._get_receiver()
            found = receiver.receive_messages(
                max_message_count=1, max_wait_time=max(max_wait_seconds, _MIN_WAIT)
            )
        if not found:
            return None
        return mapping.received(found[0], self.lock_duration_seconds)

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        handle = self._handle(message)
        with self._sdk("renew lock"):
            until = self._get_receiver().renew_message_lock(handle)
        return mapping.naive_utc(until) or until

    def complete(self, message: ReceivedMessage) -> None:
        handle = self._handle(message)
        with self._sdk("complete"):
            self._get_receiver().complete_message(handle)

    def abandon(self, message: ReceivedMessage) -> None:
        handle = self._handle(message)
        with self._sdk("abandon"):
            self._get_receiver().abandon_message(handle)

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        handle = self._handle(message)
        with self._sdk("dead-letter"):
            self._get_receiver().dead_letter_message(
                handle, reason=reason, error_description=description
            )

    def _peek_all(self, receiver: ServiceBusReceiver) -> Iterator[ServiceBusReceivedMessage]:
        # Service Bus may answer with fewer messages than asked (a partitioned entity answers
        # one partition's worth): only an empty answer means the end.
        next_seq = 1
        while True:
            page = receiver.peek_messages(_PEEK_PAGE, sequence_number=next_seq)
            if not page:
                return
            yield from page
            next_seq = max(m.sequence_number or 0 for m in page) + 1

    def list_dead_letters(self, limit: int, offset: int) -> tuple[list[DeadLetter], int]:
        with self._sdk("list dead letters"):
            letters = list(self._peek_all(self._get_dead_letters()))
        page = letters[offset : offset + limit] if limit > 0 else []
        return [mapping.dead_letter(m) for m in page], len(letters)

    def _sequence_number(self, dead_letter_id: str) -> int:
        try:
            seq = int(dead_letter_id)
        except ValueError:
            raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}") from None
        if not 0 < seq < 2**63:  # sequence numbers are positive 64-bit integers
            raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}")
        return seq

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        seq = self._sequence_number(dead_letter_id)
        with self._sdk("get dead letter"):
            found = self._get_dead_letters().peek_messages(1, sequence_number=max(seq, 1))
        if not found or found[0].sequence_number != seq:
            raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}")
        return mapping.dead_letter(found[0])

    def _take_dead_letter(
        self, dead_letter_id: str, action: Callable[[ServiceBusReceivedMessage], None]
    ) -> DeadLetter:
        """Lock the dead letter, run ``action`` on it, then complete it. Dead letters ahead of it
        are locked on the way and abandoned afterwards (their delivery count goes up by one)."""
        self.get_dead_letter(dead_letter_id)
        seq = self._sequence_number(dead_letter_id)
        receiver = self._get_dead_letters()
        held: list[ServiceBusReceivedMessage] = []
        try:
            while True:
                batch = receiver.receive_messages(
                    max_message_count=10, max_wait_time=_DEAD_LETTER_RECEIVE_WAIT
                )
                if not batch:
                    raise MessageNotFound(
                        f"dead letter {dead_letter_id} is gone or held by another receiver"
                    )
                held.extend(batch)
                target = next((m for m in batch if m.sequence_number == seq), None)
                if target is not None:
                    action(target)
                    receiver.complete_message(target)
                    held.remove(target)
                    return mapping.dead_letter(target)
        finally:
            for other in held:
                with suppress(Exception):  # its lock expires anyway
                    receiver.abandon_message(other)

    def resubmit_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        def send_copy(letter: ServiceBusReceivedMessage) -> None:
            self._get_sender().send_messages(mapping.resubmitted(letter, dead_letter_id))

        with self._sdk("resubmit dead letter"):
            return self._take_dead_letter(dead_letter_id, send_copy)

    def purge_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        with self._sdk("purge dead letter"):
            return self._take_dead_letter(dead_letter_id, lambda _letter: None)

    def active_count(self) -> int:
        with self._sdk("count messages"):
            return sum(1 for _ in self._peek_all(self._get_receiver()))

    def peek_active(self) -> list[bytes]:
        with self._sdk("peek messages"):
            return [mapping.body_of(m) for m in self._peek_all(self._get_receiver())]

    def ping(self) -> None:
        with self._sdk("ping"):
            self._get_receiver().peek_messages(1, sequence_number=1)

    def close(self) -> None:
        with self._lock:
            self._reset()
