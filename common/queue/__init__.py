"""The job queue port, with Azure Service Bus semantics.

Messages are received with peek-lock: a received message stays in the queue, invisible to other
receivers, until its lock expires or the receiver settles it. Each receive counts a delivery;
a message received when its delivery count has already reached the maximum is moved to the
dead-letter queue instead (reason ``MaxDeliveryCountExceeded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

MAX_DELIVERY_REASON = "MaxDeliveryCountExceeded"
# Service Bus takes dead-letter reasons and descriptions of up to 4,096 characters (UTF-16 code
# units, as the .NET and JavaScript SDKs count them before refusing longer ones).
MAX_DEAD_LETTER_TEXT = 4096


def fit_dead_letter_text(text: str) -> str:
    """``text`` cut to :data:`MAX_DEAD_LETTER_TEXT`, ending in "…" when cut."""
    units = text.encode("utf-16-le")
    if len(units) <= 2 * MAX_DEAD_LETTER_TEXT:
        return text
    # Room for the ellipsis; a surrogate pair cut in two is dropped whole.
    kept = units[: 2 * (MAX_DEAD_LETTER_TEXT - 1)].decode("utf-16-le", errors="ignore")
    return kept + "…"


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to send. ``message_id`` lets the broker drop an accidental second send;
    ``scheduled_at`` (UTC) keeps the message invisible until then."""

    body: bytes
    message_id: str
    scheduled_at: datetime | None = None


@dataclass(frozen=True)
class ReceivedMessage:
    """A locked message. ``handle`` belongs to the adapter that returned it."""

    message_id: str
    body: bytes
    delivery_count: int
    sequence_number: int
    enqueued_at: datetime
    locked_until: datetime
    lock_token: str
    handle: Any = None


@dataclass(frozen=True)
class DeadLetter:
    """A message in the dead-letter queue; ``id`` names it for resubmit and purge."""

    id: str
    message_id: str
    body: bytes
    reason: str
    description: str
    delivery_count: int
    enqueued_at: datetime
    dead_lettered_at: datetime | None


class JobQueue(Protocol):
    """A peek-lock queue with scheduled messages and a dead-letter queue.

    Adapters raise :class:`QueueUnavailable` when the broker cannot be reached, :class:`LockLost`
    when settling or renewing a message whose lock has expired, and :class:`MessageNotFound` for a
    dead letter that is not there.
    """

    max_delivery_count: int
    lock_duration_seconds: float

    def send(self, messages: list[OutgoingMessage]) -> None:
        """Enqueue ``messages``, in as many batches as the broker's size limit needs. A failure
        may leave the first batches sent; sending them again is safe where the broker drops
        repeated message ids (Service Bus duplicate detection)."""

    def receive(self, max_wait_seconds: float) -> ReceivedMessage | None:
        """Lock and return the next visible message, waiting up to ``max_wait_seconds``."""

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        """Extend the lock by the lock duration; return the new expiry (UTC)."""

    def complete(self, message: ReceivedMessage) -> None:
        """Remove the message for good."""

    def abandon(self, message: ReceivedMessage) -> None:
        """Release the lock so that the message is delivered again."""

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        """Move the message to the dead-letter queue with a reason and a description (each cut
        with :func:`fit_dead_letter_text`)."""

    def list_dead_letters(self, limit: int, offset: int) -> tuple[list[DeadLetter], int]:
        """A page of dead letters, oldest first, and how many there are in all. Reading the page
        reads no dead letter past it."""

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """One dead letter by id."""

    def resubmit_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Send the dead letter's body back to the queue (fresh delivery count); remove it."""

    def purge_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        """Remove a dead letter for good; return what was removed."""

    def active_count(self) -> int:
        """Messages waiting, scheduled or locked in the queue (not dead letters)."""

    def peek_active(self) -> list[bytes]:
        """The bodies of every message in the queue (waiting, scheduled or locked; not the dead
        letters), read without locking or counting a delivery."""

    def ping(self) -> None:
        """Raise :class:`QueueUnavailable` unless the broker answers. Needs only the right to
        send, so that a send-only process (the API) can tell it is ready."""

    def close(self) -> None:
        """Release connections."""
