"""Reading a Service Bus queue or its dead-letter queue message by message, on an open
receiver; used by ``servicebus.py`` only. SDK errors pass through to the caller's translation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from itertools import islice

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiver

from common.errors import MessageNotFound

PEEK_PAGE = 250
_RECEIVE_WAIT = 1.0


def sequence_number(dead_letter_id: str) -> int:
    """A dead letter's id is its sequence number in the dead-letter queue."""
    try:
        seq = int(dead_letter_id)
    except ValueError:
        raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}") from None
    if not 0 < seq < 2**63:  # sequence numbers are positive 64-bit integers
        raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}")
    return seq


def peek_all(receiver: ServiceBusReceiver) -> Iterator[ServiceBusReceivedMessage]:
    """Every message by sequence number, without locking. Service Bus may answer a peek with
    fewer messages than asked (a partitioned entity answers one partition's worth): only an
    empty answer means the end."""
    next_seq = 1
    while True:
        page = receiver.peek_messages(PEEK_PAGE, sequence_number=next_seq)
        if not page:
            return
        yield from page
        next_seq = max(m.sequence_number or 0 for m in page) + 1


def peek_page(
    receiver: ServiceBusReceiver, limit: int, offset: int
) -> list[ServiceBusReceivedMessage]:
    """The messages ``offset`` to ``offset + limit`` in sequence order; none read past them."""
    return list(islice(peek_all(receiver), offset, offset + limit)) if limit > 0 else []


def peek_one(receiver: ServiceBusReceiver, seq: int) -> ServiceBusReceivedMessage:
    found = receiver.peek_messages(1, sequence_number=max(seq, 1))
    if not found or found[0].sequence_number != seq:
        raise MessageNotFound(f"no dead letter with id {seq}")
    return found[0]


def take(
    receiver: ServiceBusReceiver,
    seq: int,
    action: Callable[[ServiceBusReceivedMessage], None],
) -> ServiceBusReceivedMessage:
    """Lock the message ``seq``, run ``action`` on it, then complete it. Messages ahead of it
    are locked on the way and abandoned afterwards (their delivery count goes up by one)."""
    held: list[ServiceBusReceivedMessage] = []
    try:
        while True:
            batch = receiver.receive_messages(max_message_count=10, max_wait_time=_RECEIVE_WAIT)
            if not batch:
                raise MessageNotFound(f"dead letter {seq} is gone or held by another receiver")
            held.extend(batch)
            target = next((m for m in batch if m.sequence_number == seq), None)
            if target is not None:
                action(target)
                receiver.complete_message(target)
                held.remove(target)
                return target
    finally:
        for other in held:
            with suppress(Exception):  # its lock expires anyway
                receiver.abandon_message(other)
