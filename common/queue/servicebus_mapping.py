"""Service Bus SDK messages and errors as the queue port's types; used by ``servicebus.py`` only."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ClientAuthenticationError
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage
from azure.servicebus.amqp import AmqpMessageBodyType
from azure.servicebus.exceptions import (
    MessageAlreadySettled,
    MessageLockLostError,
    MessageNotFoundError,
    MessagingEntityNotFoundError,
    OperationTimeoutError,
    ServiceBusAuthenticationError,
    ServiceBusAuthorizationError,
    ServiceBusCommunicationError,
    ServiceBusConnectionError,
    ServiceBusQuotaExceededError,
    ServiceBusServerBusyError,
    SessionLockLostError,
)

from common.errors import (
    IngestError,
    LockLost,
    MessageNotFound,
    NotAuthorised,
    PermanentError,
    QueueUnavailable,
)
from common.queue import DeadLetter, OutgoingMessage, ReceivedMessage
from common.sql.db import utcnow

# Service Bus rejects longer message ids.
MAX_MESSAGE_ID = 128
DEAD_LETTER_PROPERTIES = (b"DeadLetterReason", b"DeadLetterErrorDescription")

_UNAVAILABLE = (
    ServiceBusConnectionError,
    ServiceBusCommunicationError,
    OperationTimeoutError,
    ServiceBusServerBusyError,
    ServiceBusQuotaExceededError,
    ConnectionError,
    TimeoutError,
    OSError,
)


def naive_utc(moment: datetime | None) -> datetime | None:
    """The SDK's aware UTC datetimes as the naive UTC the rest of the code stores."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def aware_utc(moment: datetime) -> datetime:
    """A naive UTC datetime (as the port uses) for the SDK, which reads naive ones as local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def body_of(message: ServiceBusReceivedMessage) -> bytes:
    if message.body_type == AmqpMessageBodyType.DATA:
        return b"".join(message.body)
    value = message.body
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value).encode()


def outgoing(message: OutgoingMessage) -> ServiceBusMessage:
    """``message_id`` is set so that Service Bus duplicate detection drops an accidental resend."""
    sb = ServiceBusMessage(message.body, message_id=message.message_id)
    if message.scheduled_at is not None:
        sb.scheduled_enqueue_time_utc = aware_utc(message.scheduled_at)
    return sb


def resubmitted(letter: ServiceBusReceivedMessage, letter_id: str) -> ServiceBusMessage:
    """A fresh copy of a dead letter. Its id is derived from the dead letter, not reused: with
    duplicate detection on, the original id may still be in the window and the copy dropped."""
    properties = {
        k: v
        for k, v in (letter.application_properties or {}).items()
        if k not in DEAD_LETTER_PROPERTIES
        and (k.encode() if isinstance(k, str) else k) not in DEAD_LETTER_PROPERTIES
    }
    message_id = f"{letter.message_id or ''}:resubmit:{letter_id}"[-MAX_MESSAGE_ID:]
    return ServiceBusMessage(
        body_of(letter),
        message_id=message_id,
        content_type=letter.content_type,
        application_properties=properties or None,
    )


def handle_of(message: ReceivedMessage) -> ServiceBusReceivedMessage:
    """The SDK's message behind a port message, to settle or renew it."""
    if not isinstance(message.handle, ServiceBusReceivedMessage):
        raise PermanentError(f"message {message.message_id} was not received from Service Bus")
    return message.handle


def received(message: ServiceBusReceivedMessage, lock_duration_seconds: float) -> ReceivedMessage:
    """A received message. The SDK passes on the AMQP header's count of *prior* deliveries (0 the
    first time; the SDK's live tests assert it); the port counts this delivery too, as the
    .NET SDK does by adding one."""
    now = utcnow()
    return ReceivedMessage(
        message_id=str(message.message_id or ""),
        body=body_of(message),
        delivery_count=(message.delivery_count or 0) + 1,
        sequence_number=message.sequence_number or 0,
        enqueued_at=naive_utc(message.enqueued_time_utc) or now,
        locked_until=naive_utc(message.locked_until_utc)
        or now + timedelta(seconds=lock_duration_seconds),
        lock_token=str(message.lock_token),
        handle=message,
    )


def dead_letter(message: ServiceBusReceivedMessage) -> DeadLetter:
    """A dead letter. Service Bus keeps no dead-lettering time, so ``dead_lettered_at`` is None.
    A peeked message's count is the deliveries so far (a received one's, those before this
    receive): either way the deliveries it had before it was dead-lettered."""
    return DeadLetter(
        id=str(message.sequence_number),
        message_id=str(message.message_id or ""),
        body=body_of(message),
        reason=message.dead_letter_reason or "",
        description=message.dead_letter_error_description or "",
        delivery_count=message.delivery_count or 0,
        enqueued_at=naive_utc(message.enqueued_time_utc) or utcnow(),
        dead_lettered_at=None,
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def translate(exc: BaseException, what: str, secrets: tuple[str, ...] = ()) -> IngestError:
    """Map an SDK error raised while doing ``what`` to the project's error tree."""
    if isinstance(exc, IngestError):
        return exc
    detail = _first_line(exc)
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "***")
    message = f"Service Bus: {what} failed ({type(exc).__name__}: {detail})"
    if isinstance(exc, MessageLockLostError | MessageAlreadySettled | SessionLockLostError):
        return LockLost(f"Service Bus: {what}: the message lock expired or was already settled")
    if isinstance(exc, MessageNotFoundError):
        return MessageNotFound(message)
    if isinstance(exc, MessagingEntityNotFoundError):
        return PermanentError(f"Service Bus: {what} failed: the queue does not exist ({detail})")
    if isinstance(
        exc,
        ServiceBusAuthenticationError | ServiceBusAuthorizationError | ClientAuthenticationError,
    ):
        return NotAuthorised(f"Service Bus: {what} failed: not authorised ({detail})", "queue")
    if isinstance(exc, _UNAVAILABLE):
        return QueueUnavailable(message)
    return PermanentError(message)


def in_parallel(calls: list[Callable[[], object]]) -> None:
    """Run ``calls`` at once; raise the first error after all have finished."""
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    with ThreadPoolExecutor(len(calls), thread_name_prefix="servicebus") as pool:
        futures = [pool.submit(call) for call in calls]
    for future in futures:
        future.result()


def secret_parts(connection_string: str) -> tuple[str, ...]:
    """The key or signature in a connection string, to keep out of error messages."""
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    return tuple(
        v for k, v in parts.items() if k.lower() in ("sharedaccesskey", "sharedaccesssignature")
    )


def names_emulator(connection_string: str) -> bool:
    """Whether the connection string points at the Service Bus emulator."""
    parts = dict(p.split("=", 1) for p in connection_string.split(";") if "=" in p)
    flags = {k.lower(): v for k, v in parts.items()}
    return flags.get("usedevelopmentemulator", "").strip().lower() == "true"
