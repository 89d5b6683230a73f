"""The in-memory job queue: Service Bus peek-lock semantics in one process, for fast tests.

A receive locks the first visible message and counts a delivery (the first is 1). A lock ends
when the receiver settles the message or when it expires on the queue's clock; an expiry is
noticed by the next call, as a broker notices it, with no sweeper thread. A message released
(abandoned, or its lock expired) with its delivery count at the maximum moves to the dead-letter
queue with reason ``MaxDeliveryCountExceeded``, as Service Bus moves it. A resubmitted dead
letter is a new message with a new sequence number, as Service Bus sends a copy.

There is no duplicate detection: a message id sent twice is delivered twice, as from the queue
table, so what runs on this queue must already cope with a repeated send.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from common.errors import LockLost, MessageNotFound
from common.queue import (
    MAX_DELIVERY_REASON,
    DeadLetter,
    OutgoingMessage,
    ReceivedMessage,
    fit_dead_letter_text,
)

# A send wakes a waiting receive at once; a clock that a test moves on does not, hence a poll.
_POLL_SECONDS = 0.02


@dataclass
class _Message:
    seq: int
    message_id: str
    body: bytes
    enqueued_at: datetime
    visible_at: datetime
    delivery_count: int = 0
    lock_token: str | None = None
    locked_until: datetime | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(at: datetime) -> datetime:
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


class MemoryJobQueue:
    """A :class:`~common.queue.JobQueue` held in this process; safe to share between threads.

    ``clock`` gives now as naive UTC, like :class:`~common.queue.sql.SqlJobQueue`'s: a test moves
    it on instead of waiting for a lock or a scheduled time.
    """

    def __init__(
        self,
        lock_duration_seconds: float = 60.0,
        max_delivery_count: int = 10,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if max_delivery_count < 1:
            raise ValueError("max_delivery_count must be at least 1, as on Service Bus")
        self.lock_duration_seconds = lock_duration_seconds
        self.max_delivery_count = max_delivery_count
        self._clock = clock
        self._changed = threading.Condition()
        self._messages: dict[int, _Message] = {}  # in sequence-number order
        self._dead: dict[str, DeadLetter] = {}  # in the order they were dead-lettered
        self._next_seq = 1

    def send(self, messages: list[OutgoingMessage]) -> None:
        with self._changed:
            now = self._now()
            for message in messages:
                at = _naive_utc(message.scheduled_at) if message.scheduled_at else now
                self._append(message.message_id, message.body, now, max(now, at))
            self._changed.notify_all()

    def receive(self, max_wait_seconds: float) -> ReceivedMessage | None:
        deadline = time.monotonic() + max_wait_seconds
        with self._changed:
            while True:
                received = self._lock_next()
                remaining = deadline - time.monotonic()
                if received is not None or remaining <= 0:
                    return received
                self._changed.wait(min(_POLL_SECONDS, remaining))

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        with self._changed:
            held = self._held(message)
            held.locked_until = self._clock() + timedelta(seconds=self.lock_duration_seconds)
            return held.locked_until

    def complete(self, message: ReceivedMessage) -> None:
        with self._changed:
            del self._messages[self._held(message).seq]

    def abandon(self, message: ReceivedMessage) -> None:
        with self._changed:
            self._release(self._held(message), self._clock())
            self._changed.notify_all()

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        with self._changed:
            self._to_dead_letters(self._held(message), reason, description, self._clock())

    def list_dead_letters(self, limit: int, offset: int) -> tuple[list[DeadLetter], int]:
        with self._changed:
            self._now()
            letters = list(self._dead.values())
        return (letters[offset : offset + limit] if limit > 0 else []), len(letters)

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        with self._changed:
            self._now()
            return self._find_dead_letter(dead_letter_id)

    def resubmit_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        with self._changed:
            now = self._now()
            letter = self._dead.pop(self._find_dead_letter(dead_letter_id).id)
            self._append(letter.message_id, letter.body, now, now)
            self._changed.notify_all()
            return letter

    def purge_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        with self._changed:
            self._now()
            return self._dead.pop(self._find_dead_letter(dead_letter_id).id)

    def active_count(self) -> int:
        with self._changed:
            self._now()
            return len(self._messages)

    def peek_active(self) -> list[bytes]:
        with self._changed:
            self._now()
            return [message.body for message in self._messages.values()]

    def ping(self) -> None:
        """Always answers: nothing to reach."""

    def close(self) -> None:
        """Nothing to release; the messages stay for whoever still holds the queue."""

    # Under the condition's lock from here on.

    def _now(self) -> datetime:
        """Now, after releasing the locks that expired by then."""
        now = self._clock()
        for message in list(self._messages.values()):
            if message.locked_until is not None and message.locked_until <= now:
                self._release(message, now)
        return now

    def _append(self, message_id: str, body: bytes, enqueued: datetime, visible: datetime) -> None:
        self._messages[self._next_seq] = _Message(
            self._next_seq, message_id, body, enqueued, visible
        )
        self._next_seq += 1

    def _lock_next(self) -> ReceivedMessage | None:
        now = self._now()
        for message in self._messages.values():
            if message.lock_token is None and message.visible_at <= now:
                message.lock_token = uuid.uuid4().hex
                message.locked_until = now + timedelta(seconds=self.lock_duration_seconds)
                message.delivery_count += 1
                return ReceivedMessage(
                    message_id=message.message_id,
                    body=message.body,
                    delivery_count=message.delivery_count,
                    sequence_number=message.seq,
                    enqueued_at=message.enqueued_at,
                    locked_until=message.locked_until,
                    lock_token=message.lock_token,
                    handle=message.seq,
                )
        return None

    def _held(self, message: ReceivedMessage) -> _Message:
        self._now()
        held = self._messages.get(message.sequence_number)
        if held is None or held.lock_token is None or held.lock_token != message.lock_token:
            raise LockLost(
                f"the lock on message {message.message_id} expired or was taken by another receiver"
            )
        return held

    def _release(self, message: _Message, now: datetime) -> None:
        message.lock_token = None
        message.locked_until = None
        if message.delivery_count >= self.max_delivery_count:
            self._to_dead_letters(
                message,
                MAX_DELIVERY_REASON,
                f"Message could not be consumed after {message.delivery_count} delivery attempts.",
                now,
            )

    def _to_dead_letters(
        self, message: _Message, reason: str, description: str, now: datetime
    ) -> None:
        del self._messages[message.seq]
        letter_id = str(message.seq)
        self._dead[letter_id] = DeadLetter(
            id=letter_id,
            message_id=message.message_id,
            body=message.body,
            reason=fit_dead_letter_text(reason),
            description=fit_dead_letter_text(description),
            delivery_count=message.delivery_count,
            enqueued_at=message.enqueued_at,
            dead_lettered_at=now,
        )

    def _find_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        letter = self._dead.get(dead_letter_id)
        if letter is None:
            raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}")
        return letter
