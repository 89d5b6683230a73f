"""Request/response operations on ``<entity>/$management`` and the CBS ``put-token``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from proton import Array, Message

from tests.support.servicebus_broker import codec
from tests.support.servicebus_broker.store import LockLostError, Store

LOCK_LOST = "com.microsoft:message-lock-lost"
NOT_IMPLEMENTED = "amqp:not-implemented"
BAD_REQUEST = "com.microsoft:argument-error"

MANAGEMENT_SUFFIX = "/$management"


def cbs(request: Message) -> Message:
    """Accept every token: the broker does not check credentials."""
    return codec.reply(request, 200, "OK", cbs=True)


def _tokens(body: dict[str, Any]) -> list[uuid.UUID]:
    value = body.get("lock-tokens")
    items = value.elements if isinstance(value, Array) else (value or [])
    return [item if isinstance(item, uuid.UUID) else uuid.UUID(str(item)) for item in items]


class Management:
    """Answers the management requests the Service Bus SDK sends for one namespace."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._operations: dict[str, Callable[[str, dict[str, Any], Message], Message]] = {
            "com.microsoft:renew-lock": self._renew_lock,
            "com.microsoft:peek-message": self._peek,
            "com.microsoft:schedule-message": self._schedule,
            "com.microsoft:update-disposition": self._update_disposition,
        }

    def handle(self, address: str, request: Message) -> Message:
        entity = address[: -len(MANAGEMENT_SUFFIX)]
        properties: dict[Any, Any] = dict(request.properties or {})
        operation = str(properties.get("operation", ""))
        handler = self._operations.get(operation)
        if handler is None:
            return codec.reply(
                request, 501, f"{operation} is not emulated", condition=NOT_IMPLEMENTED
            )
        body = request.body if isinstance(request.body, dict) else {}
        try:
            return handler(entity, body, request)
        except LockLostError as exc:
            return codec.reply(request, 410, str(exc), condition=LOCK_LOST)
        except (KeyError, TypeError, ValueError) as exc:
            return codec.reply(request, 400, f"bad request: {exc}", condition=BAD_REQUEST)

    def _renew_lock(self, entity: str, body: dict[str, Any], request: Message) -> Message:
        expiries = self.store.renew(entity, _tokens(body))
        return codec.reply(request, 200, "OK", {"expirations": [codec.expiry(e) for e in expiries]})

    def _peek(self, entity: str, body: dict[str, Any], request: Message) -> Message:
        start = int(body.get("from-sequence-number", 1))
        count = int(body.get("message-count", 1))
        found = self.store.peek(entity, start, count)
        if not found:
            return codec.reply(request, 204, "No messages")
        messages = [
            {"message": codec.render(m, m.locked_until if m.lock_token else None)} for m in found
        ]
        return codec.reply(request, 200, "OK", {"messages": messages})

    def _schedule(self, entity: str, body: dict[str, Any], request: Message) -> Message:
        numbers = []
        for item in body["messages"]:
            raw = bytes(item["message"])
            message_id, scheduled = codec.incoming_fields(raw)
            seq = self.store.enqueue(entity, raw, message_id, scheduled)
            numbers.append(-1 if seq is None else seq)
        return codec.reply(request, 200, "OK", {"sequence-numbers": numbers})

    def _update_disposition(self, entity: str, body: dict[str, Any], request: Message) -> Message:
        status = str(body["disposition-status"])
        for token in _tokens(body):
            if status == "completed":
                self.store.complete(entity, token)
            elif status == "abandoned":
                self.store.abandon(entity, token)
            elif status == "suspended":
                self.store.dead_letter(
                    entity,
                    token,
                    str(body.get("deadletter-reason", "")),
                    str(body.get("deadletter-description", "")),
                )
            else:
                return codec.reply(
                    request, 501, f"{status} is not emulated", condition=NOT_IMPLEMENTED
                )
        return codec.reply(request, 200, "OK", {})
