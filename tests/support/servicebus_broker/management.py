"""Request/response operations on ``<entity>/$management`` and the CBS ``put-token``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from proton import Array, Message

from tests.support.servicebus_broker import codec
from tests.support.servicebus_broker.rights import LISTEN, SEND, UNAUTHORIZED, refusal
from tests.support.servicebus_broker.store import ArgumentError, LockLostError, Store

LOCK_LOST = "com.microsoft:message-lock-lost"
NOT_IMPLEMENTED = "amqp:not-implemented"
BAD_REQUEST = "com.microsoft:argument-error"
OUT_OF_RANGE = "com.microsoft:argument-out-of-range"

MANAGEMENT_SUFFIX = "/$management"


def cbs(request: Message, accepted: bool) -> Message:
    """The answer to a ``put-token``: the signature is not checked, the key name is."""
    if accepted:
        return codec.reply(request, 200, "OK", cbs=True)
    return codec.reply(request, 401, "InvalidSignature: the key name is unknown", cbs=True)


def _tokens(body: dict[str, Any]) -> list[uuid.UUID]:
    value = body.get("lock-tokens")
    items = value.elements if isinstance(value, Array) else (value or [])
    return [item if isinstance(item, uuid.UUID) else uuid.UUID(str(item)) for item in items]


class Management:
    """Answers the management requests the Service Bus SDK sends for one namespace."""

    def __init__(self, store: Store) -> None:
        self.store = store
        Operation = Callable[[str, dict[str, Any], Message], Message]
        self._operations: dict[str, tuple[str, Operation]] = {
            "com.microsoft:renew-lock": (LISTEN, self._renew_lock),
            "com.microsoft:peek-message": (LISTEN, self._peek),
            "com.microsoft:schedule-message": (SEND, self._schedule),
            "com.microsoft:cancel-scheduled-message": (SEND, self._cancel_scheduled),
            "com.microsoft:update-disposition": (LISTEN, self._update_disposition),
        }

    def handle(self, address: str, request: Message, claims: frozenset[str]) -> Message:
        """Answer ``request`` for a connection whose token carries ``claims``."""
        entity = address[: -len(MANAGEMENT_SUFFIX)]
        properties: dict[Any, Any] = dict(request.properties or {})
        operation = str(properties.get("operation", ""))
        found = self._operations.get(operation)
        if found is None:
            return codec.reply(
                request, 501, f"{operation} is not emulated", condition=NOT_IMPLEMENTED
            )
        claim, handler = found
        if claim not in claims:
            return codec.reply(request, 401, refusal(claim, entity), condition=UNAUTHORIZED)
        body = request.body if isinstance(request.body, dict) else {}
        try:
            return handler(entity, body, request)
        except LockLostError as exc:
            return codec.reply(request, 410, str(exc), condition=LOCK_LOST)
        except ArgumentError as exc:
            return codec.reply(request, 400, str(exc), condition=OUT_OF_RANGE)
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
        now = self.store.clock()
        messages = [
            {
                "message": codec.render(
                    m, m.locked_until if m.lock_token else None, peeked=True, now=now
                )
            }
            for m in found
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

    def _cancel_scheduled(self, entity: str, body: dict[str, Any], request: Message) -> Message:
        value = body["sequence-numbers"]
        numbers = value.elements if isinstance(value, Array) else value
        self.store.cancel_scheduled(entity, [int(n) for n in numbers])
        return codec.reply(request, 200, "OK", {})

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
