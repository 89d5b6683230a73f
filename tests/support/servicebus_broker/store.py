"""The broker's state: queues, their dead-letter queues, locks and scheduled messages.

Pure Python and thread-safe; the AMQP side (``amqp.py``) turns frames into calls on :class:`Store`.
Times are epoch seconds (floats) so that a test can pass its own clock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

DLQ_SUFFIX = "/$deadletterqueue"
MAX_DELIVERY_REASON = "MaxDeliveryCountExceeded"
# The .NET and JavaScript SDKs refuse a longer dead-letter reason or description (UTF-16 units).
MAX_DEAD_LETTER_TEXT = 4096


def entity_path(address: str) -> str:
    """The entity an address names, lower-cased: ``amqps://host:port/q`` and ``q`` are ``q``."""
    if "://" in address:
        address = address.split("://", 1)[1].partition("/")[2]
    return address.strip("/").lower()


class LockLostError(Exception):
    """The lock token is unknown, expired or was taken over."""


class NotFoundError(Exception):
    """No message with that sequence number."""


class ArgumentError(Exception):
    """A request Service Bus refuses as out of range."""


@dataclass(frozen=True)
class QueueOptions:
    """Per-queue settings, as on a Service Bus queue."""

    lock_duration: float = 60.0
    max_delivery_count: int = 10
    duplicate_detection_window: float | None = 600.0


@dataclass
class StoredMessage:
    """One message as the broker keeps it: the sender's encoded AMQP message plus broker state."""

    seq: int
    raw: bytes
    message_id: str | None
    enqueued_at: float
    visible_at: float
    delivery_count: int = 0
    lock_token: uuid.UUID | None = None
    locked_until: float = 0.0
    dead_letter: tuple[str, str] | None = None
    dead_letter_source: str | None = None

    def locked(self, now: float) -> bool:
        return self.lock_token is not None and self.locked_until > now


@dataclass
class Entity:
    """A queue or a dead-letter queue: messages in sequence-number order."""

    name: str
    options: QueueOptions
    is_dead_letter_queue: bool = False
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_seq: int = 1
    seen_ids: dict[str, float] = field(default_factory=dict)


class Store:
    """Every entity of the namespace; queues are created on first use."""

    def __init__(self, clock: Callable[[], float] = time.time, peek_page: int = 3) -> None:
        self.clock = clock
        # A peek answers at most this many messages, whatever was asked: Service Bus may answer
        # short pages (a partitioned entity answers one partition's worth).
        self.peek_page = peek_page
        self.peeked = 0  # messages returned by peeks so far, to see what a listing read
        self._lock = threading.RLock()
        self._entities: dict[str, Entity] = {}
        self._options: dict[str, QueueOptions] = {}
        self.default_options = QueueOptions()

    def configure(self, queue: str, options: QueueOptions) -> None:
        """Set a queue's options (before or after its first use)."""
        with self._lock:
            key = entity_path(queue)
            self._options[key] = options
            if key in self._entities:
                self._entities[key].options = options

    def entity(self, address: str) -> Entity:
        """The queue or dead-letter queue at ``address``, created if new."""
        key = entity_path(address)
        with self._lock:
            found = self._entities.get(key)
            if found is None:
                base = key.removesuffix(DLQ_SUFFIX)
                options = self._options.get(base, self.default_options)
                found = Entity(key, options, is_dead_letter_queue=key.endswith(DLQ_SUFFIX))
                self._entities[key] = found
            return found

    def _dead_letter_queue(self, queue: Entity) -> Entity:
        return self.entity(queue.name + DLQ_SUFFIX)

    def enqueue(
        self, address: str, raw: bytes, message_id: str | None, scheduled_at: float | None
    ) -> int | None:
        """Add a message; return its sequence number, or None when dropped as a duplicate."""
        with self._lock:
            queue = self.entity(address)
            now = self.clock()
            window = queue.options.duplicate_detection_window
            if window is not None and message_id is not None:
                queue.seen_ids = {k: t for k, t in queue.seen_ids.items() if t > now - window}
                if message_id in queue.seen_ids:
                    return None
                queue.seen_ids[message_id] = now
            return self._append(queue, raw, message_id, now, max(now, scheduled_at or now)).seq

    def _append(
        self, queue: Entity, raw: bytes, message_id: str | None, enqueued: float, visible: float
    ) -> StoredMessage:
        stored = StoredMessage(queue.next_seq, raw, message_id, enqueued, visible)
        queue.messages[stored.seq] = stored
        queue.next_seq += 1
        return stored

    def _move_to_dead_letters(
        self, queue: Entity, stored: StoredMessage, reason: str, description: str
    ) -> None:
        del queue.messages[stored.seq]
        dlq = self._dead_letter_queue(queue)
        moved = self._append(dlq, stored.raw, stored.message_id, stored.enqueued_at, 0.0)
        moved.delivery_count = stored.delivery_count
        moved.dead_letter = (reason, description)
        moved.dead_letter_source = queue.name

    def _expire_locks(self, queue: Entity, now: float) -> None:
        for stored in list(queue.messages.values()):
            if stored.lock_token is not None and stored.locked_until <= now:
                stored.lock_token = None
                self._after_unlock(queue, stored)

    def _after_unlock(self, queue: Entity, stored: StoredMessage) -> None:
        limit = queue.options.max_delivery_count
        if not queue.is_dead_letter_queue and stored.delivery_count >= limit:
            self._move_to_dead_letters(
                queue,
                stored,
                MAX_DELIVERY_REASON,
                f"Message could not be consumed after {limit} delivery attempts.",
            )

    def lock_next(self, address: str) -> tuple[StoredMessage, uuid.UUID] | None:
        """Lock the first visible message and count a delivery; None when there is none."""
        with self._lock:
            queue = self.entity(address)
            now = self.clock()
            self._expire_locks(queue, now)
            for stored in queue.messages.values():
                if stored.visible_at <= now and stored.lock_token is None:
                    stored.lock_token = uuid.uuid4()
                    stored.locked_until = now + queue.options.lock_duration
                    stored.delivery_count += 1
                    return stored, stored.lock_token
            return None

    def _locked_message(self, queue: Entity, token: uuid.UUID) -> StoredMessage:
        now = self.clock()
        for stored in queue.messages.values():
            if stored.lock_token == token:
                if stored.locked_until <= now:
                    stored.lock_token = None
                    self._after_unlock(queue, stored)
                    break
                return stored
        raise LockLostError(f"the lock {token} is not held (expired, settled or never granted)")

    def complete(self, address: str, token: uuid.UUID) -> None:
        with self._lock:
            queue = self.entity(address)
            del queue.messages[self._locked_message(queue, token).seq]

    def abandon(self, address: str, token: uuid.UUID) -> None:
        with self._lock:
            queue = self.entity(address)
            stored = self._locked_message(queue, token)
            stored.lock_token = None
            self._after_unlock(queue, stored)

    def release(self, address: str, token: uuid.UUID) -> None:
        """Hand back a message the receiver never looked at: the delivery does not count."""
        with self._lock:
            queue = self.entity(address)
            stored = self._locked_message(queue, token)
            stored.lock_token = None
            stored.delivery_count -= 1

    def dead_letter(self, address: str, token: uuid.UUID, reason: str, description: str) -> None:
        for name, text in (("reason", reason), ("description", description)):
            if len(text.encode("utf-16-le")) // 2 > MAX_DEAD_LETTER_TEXT:
                raise ArgumentError(
                    f"the dead-letter {name} is longer than {MAX_DEAD_LETTER_TEXT} characters"
                )
        with self._lock:
            queue = self.entity(address)
            stored = self._locked_message(queue, token)
            if queue.is_dead_letter_queue:
                raise LockLostError("a dead-lettered message cannot be dead-lettered again")
            self._move_to_dead_letters(queue, stored, reason, description)

    def renew(self, address: str, tokens: list[uuid.UUID]) -> list[float]:
        with self._lock:
            queue = self.entity(address)
            expiries = []
            for token in tokens:
                stored = self._locked_message(queue, token)
                stored.locked_until = self.clock() + queue.options.lock_duration
                expiries.append(stored.locked_until)
            return expiries

    def peek(self, address: str, from_seq: int, count: int) -> list[StoredMessage]:
        """Up to ``count`` (and at most ``peek_page``) messages from ``from_seq`` on, locked and
        scheduled ones included."""
        with self._lock:
            queue = self.entity(address)
            self._expire_locks(queue, self.clock())
            found = [m for seq, m in queue.messages.items() if seq >= from_seq]
            page = found[: min(count, self.peek_page)]
            self.peeked += len(page)
            return page

    def cancel_scheduled(self, address: str, sequence_numbers: list[int]) -> None:
        """Remove messages still waiting for their scheduled time; others are left alone."""
        with self._lock:
            queue = self.entity(address)
            now = self.clock()
            for seq in sequence_numbers:
                stored = queue.messages.get(seq)
                if stored is not None and stored.visible_at > now and stored.lock_token is None:
                    del queue.messages[seq]

    def counts(self, address: str) -> tuple[int, int, int]:
        """(active, scheduled, dead-lettered) messages of a queue, as its runtime properties
        count them: a locked message is active, a scheduled one is not yet."""
        with self._lock:
            queue = self.entity(address)
            now = self.clock()
            self._expire_locks(queue, now)
            scheduled = sum(
                1 for m in queue.messages.values() if m.visible_at > now and m.lock_token is None
            )
            dead = len(self._dead_letter_queue(queue).messages)
            return len(queue.messages) - scheduled, scheduled, dead

    def has_visible(self, address: str) -> bool:
        with self._lock:
            queue = self.entity(address)
            now = self.clock()
            return any(
                m.visible_at <= now and (m.lock_token is None or m.locked_until <= now)
                for m in queue.messages.values()
            )
