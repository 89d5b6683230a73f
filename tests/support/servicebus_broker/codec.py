"""AMQP message sections in and out: batches, broker annotations, management replies."""

from __future__ import annotations

from typing import Any

from proton import Data, Described, Message, symbol, timestamp

from tests.support.servicebus_broker.store import StoredMessage

DATA_SECTION = 0x75
_SECTION_CODES = range(0x70, 0x79)

SCHEDULED_ENQUEUE_TIME = symbol("x-opt-scheduled-enqueue-time")


def _sections(payload: bytes) -> list[tuple[Any, Any]]:
    """The top-level described values of an encoded message, in order."""
    found: list[tuple[Any, Any]] = []
    view = memoryview(payload)
    while view:
        data = Data()
        used = data.decode(bytes(view))
        data.rewind()
        data.next()
        value = data.get_object()
        if not isinstance(value, Described) or used <= 0:
            raise ValueError("not an AMQP message")
        inner = value.value
        found.append((value.descriptor, bytes(inner) if isinstance(inner, memoryview) else inner))
        view = view[used:]
    return found


def _is_encoded_message(candidate: bytes) -> bool:
    if len(candidate) < 3 or candidate[0] != 0 or candidate[1] != 0x53:
        return False
    if candidate[2] not in _SECTION_CODES:
        return False
    try:
        _sections(candidate)
    except Exception:
        return False
    return True


def split_transfer(payload: bytes) -> list[bytes]:
    """The messages of one transfer: a Service Bus batch carries one encoded message per
    data section (message-format 0x80013700, which proton does not expose, hence the sniffing)."""
    try:
        sections = _sections(payload)
    except Exception:
        return [payload]
    data = [bytes(v) for d, v in sections if d == DATA_SECTION]
    if data and all(_is_encoded_message(d) for d in data):
        return data
    return [payload]


def decode(raw: bytes) -> Message:
    message = Message()
    message.decode(bytes(raw))
    if isinstance(message.body, memoryview):
        message.body = bytes(message.body)  # the view points into proton's buffer
    return message


def incoming_fields(raw: bytes) -> tuple[str | None, float | None]:
    """The message id and the scheduled enqueue time (epoch seconds) of an encoded message."""
    message = decode(raw)
    message_id = None if message.id is None else str(message.id)
    annotations: dict[Any, Any] = dict(message.annotations or {})
    scheduled = annotations.get(SCHEDULED_ENQUEUE_TIME)
    return message_id, (None if scheduled is None else int(scheduled) / 1000.0)


def _ms(seconds: float) -> timestamp:
    return timestamp(int(seconds * 1000))


# Service Bus's message states on a peeked message (x-opt-message-state).
ACTIVE, SCHEDULED = 0, 2


def render(
    stored: StoredMessage, locked_until: float | None, *, peeked: bool, now: float = 0.0
) -> bytes:
    """The stored message as the broker delivers or peeks it: Service Bus annotations, delivery
    count, and the dead-letter reason in the application properties.

    The header's delivery count is AMQP's "prior unsuccessful delivery attempts": a delivery
    carries the deliveries before this one (0 the first time), a peek the deliveries so far.
    The .NET SDK adds one to a received message's count and not to a peeked one's
    (``AmqpMessageConverter.AmqpMessageToSBReceivedMessage``); the Python SDK passes it on.
    """
    message = decode(stored.raw)
    annotations = dict(message.annotations or {})
    annotations[symbol("x-opt-sequence-number")] = stored.seq
    annotations[symbol("x-opt-enqueued-time")] = _ms(stored.enqueued_at)
    if locked_until is not None:
        annotations[symbol("x-opt-locked-until")] = _ms(locked_until)
    if stored.dead_letter_source is not None:
        annotations[symbol("x-opt-deadletter-source")] = stored.dead_letter_source
    if peeked:
        scheduled = stored.visible_at > now and stored.lock_token is None
        annotations[symbol("x-opt-message-state")] = SCHEDULED if scheduled else ACTIVE
    message.annotations = annotations
    if stored.dead_letter is not None:
        properties: dict[Any, Any] = dict(message.properties or {})
        properties["DeadLetterReason"] = stored.dead_letter[0]
        properties["DeadLetterErrorDescription"] = stored.dead_letter[1]
        message.properties = properties  # type: ignore[assignment]
    message.delivery_count = stored.delivery_count if peeked else stored.delivery_count - 1
    encoded: bytes = message.encode()
    return encoded


def reply(
    request: Message,
    status: int,
    description: str,
    body: Any = None,
    *,
    cbs: bool = False,
    condition: str | None = None,
) -> Message:
    """A management (or CBS) response correlated to ``request``."""
    code, text = (
        ("status-code", "status-description") if cbs else ("statusCode", "statusDescription")
    )
    properties: dict[str, Any] = {code: status, text: description}
    if condition is not None:
        properties["errorCondition"] = symbol(condition)
    response = Message(body=body, correlation_id=request.id, properties=properties)
    return response


def expiry(seconds: float) -> timestamp:
    return _ms(seconds)
