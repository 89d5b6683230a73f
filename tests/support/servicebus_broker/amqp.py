"""The proton handler: links, transfers and dispositions mapped onto :class:`Store`."""

from __future__ import annotations

import logging
from typing import Any, cast

from proton import Condition, Delivery, Endpoint, Handler, Link, Message

from tests.support.servicebus_broker import codec
from tests.support.servicebus_broker.management import (
    LOCK_LOST,
    MANAGEMENT_SUFFIX,
    NOT_IMPLEMENTED,
    OUT_OF_RANGE,
    Management,
    cbs,
)
from tests.support.servicebus_broker.rights import (
    LISTEN,
    SEND,
    UNAUTHORIZED,
    SharedAccessRules,
    refusal,
)
from tests.support.servicebus_broker.store import ArgumentError, LockLostError, Store, entity_path

log = logging.getLogger("servicebus_broker")

CBS = "$cbs"
TICK_SECONDS = 0.05
CREDIT = 1000
# The Standard tier's largest message (or batch): 256 KB, advertised on every link.
MAX_MESSAGE_SIZE = 256 * 1024
MESSAGE_SIZE_EXCEEDED = "amqp:link:message-size-exceeded"
# What Service Bus advertises in its open frame.
MAX_FRAME_SIZE = 65536


def _is_request_response(address: str) -> bool:
    path = entity_path(address)
    return path == CBS or path.endswith(MANAGEMENT_SUFFIX)


def _claims(connection: Any) -> frozenset[str]:
    """The claims of the token this connection put on ``$cbs`` (none before it did)."""
    claims: frozenset[str] = getattr(connection, "claims", frozenset())
    return claims


class BrokerHandler(Handler):
    """One handler for every connection of the broker."""

    def __init__(self, store: Store, rules: SharedAccessRules) -> None:
        super().__init__()
        self.store = store
        self.rules = rules
        self.management = Management(store)
        self.consumers: list[Link] = []
        self.open_connections = 0
        self.peak_connections = 0

    # Endpoints: accept what the client opens (echoing addresses and settle modes) when the
    # connection's token carries the claim the link needs.

    def on_connection_bound(self, event: Any) -> None:
        event.transport.sasl().allowed_mechs("ANONYMOUS PLAIN MSSBCBS")
        event.transport.max_frame_size = MAX_FRAME_SIZE
        event.connection.counted = True
        self.open_connections += 1
        self.peak_connections = max(self.peak_connections, self.open_connections)

    def on_connection_remote_open(self, event: Any) -> None:
        event.connection.open()

    def on_session_remote_open(self, event: Any) -> None:
        event.session.open()

    def on_link_remote_open(self, event: Any) -> None:
        link = event.link
        link.source.address = link.remote_source.address
        link.target.address = link.remote_target.address
        link.snd_settle_mode = link.remote_snd_settle_mode
        link.rcv_settle_mode = link.remote_rcv_settle_mode
        link.max_message_size = MAX_MESSAGE_SIZE
        link.open()
        address = (link.target.address if link.is_receiver else link.source.address) or ""
        if not _is_request_response(address):
            claim = SEND if link.is_receiver else LISTEN
            if claim not in _claims(link.connection):
                link.condition = Condition(UNAUTHORIZED, refusal(claim, entity_path(address)))
                link.close()
                return
        if link.is_receiver:
            link.flow(CREDIT)
        elif not _is_request_response(link.source.address or ""):
            self.consumers.append(link)
            self._dispatch(link)

    def _forget(self, link: Link) -> None:
        self.consumers = [c for c in self.consumers if c != link]

    def on_link_remote_close(self, event: Any) -> None:
        self._forget(event.link)
        event.link.close()

    def on_link_remote_detach(self, event: Any) -> None:
        self._forget(event.link)
        event.link.detach()

    def on_session_remote_close(self, event: Any) -> None:
        event.session.close()

    def on_connection_remote_close(self, event: Any) -> None:
        link = event.connection.link_head(0)
        while link:
            self._forget(link)
            link = link.next(0)
        event.connection.close()

    def on_transport_closed(self, event: Any) -> None:
        connection = event.connection
        if connection is not None and getattr(connection, "counted", False):
            connection.counted = False
            self.open_connections -= 1
        if connection is not None:
            link = connection.link_head(0)
            while link:
                self._forget(link)
                link = link.next(0)

    # Sending: lock the next message for every consumer link with credit.

    def on_link_flow(self, event: Any) -> None:
        if event.link.is_sender and event.link in self.consumers:
            self._dispatch(event.link)

    def on_timer_task(self, event: Any) -> None:
        self.dispatch_all()
        event.container.schedule(TICK_SECONDS, self)

    def dispatch_all(self) -> None:
        for link in list(self.consumers):
            self._dispatch(link)

    def _dispatch(self, link: Link) -> None:
        if link.state & Endpoint.LOCAL_CLOSED or link.state & Endpoint.REMOTE_CLOSED:
            self._forget(link)
            return
        address = link.source.address or ""
        while link.credit > 0:
            locked = self.store.lock_next(address)
            if locked is None:
                return
            stored, token = locked
            # The SDK reads the lock token from the 16-byte tag (a little-endian UUID).
            delivery = link.delivery(cast(str, token.bytes_le))
            delivery.lock_token = token
            link.send(codec.render(stored, stored.locked_until, peeked=False))
            link.advance()

    # Receiving: sends to a queue, management requests, and settlements of our deliveries.

    def on_delivery(self, event: Any) -> None:
        delivery: Delivery = event.delivery
        link = delivery.link
        if link.is_receiver:
            if delivery.readable and not delivery.partial:
                payload = link.recv(delivery.pending) or b""
                link.advance()
                if len(payload) > MAX_MESSAGE_SIZE:
                    delivery.local.condition = Condition(
                        MESSAGE_SIZE_EXCEEDED,
                        f"The received message (size {len(payload)}) exceeds the limit "
                        f"({MAX_MESSAGE_SIZE} bytes) currently allowed on the link.",
                    )
                    delivery.update(Delivery.REJECTED)
                    delivery.settle()
                    return
                self._incoming(link, delivery, payload)
                if link.credit < CREDIT // 2:
                    link.flow(CREDIT - link.credit)
        elif delivery.updated:
            self._settlement(link, delivery)

    def _incoming(self, link: Link, delivery: Delivery, payload: bytes) -> None:
        address = link.target.address or ""
        if _is_request_response(address):
            request = codec.decode(payload)
            if entity_path(address) == CBS:
                claims = self.rules.claims_of_token(str(request.body or ""))
                if claims is not None:
                    link.connection.claims = claims
                response = cbs(request, accepted=claims is not None)
            else:
                response = self.management.handle(
                    entity_path(address), request, _claims(link.connection)
                )
            delivery.update(Delivery.ACCEPTED)
            delivery.settle()
            self._respond(link, address, response)
            self.dispatch_all()
            return
        for raw in codec.split_transfer(payload):
            message_id, scheduled = codec.incoming_fields(raw)
            self.store.enqueue(address, raw, message_id, scheduled)
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        self.dispatch_all()

    def _respond(self, request_link: Link, address: str, response: Message) -> None:
        link = request_link.connection.link_head(Endpoint.LOCAL_ACTIVE)
        while link:
            if link.is_sender and link.source.address == address:
                link.delivery(f"r{id(response)}")
                link.send(response.encode())
                link.advance()
                return
            link = link.next(Endpoint.LOCAL_ACTIVE)
        log.warning("no reply link for %s", address)

    def _settlement(self, link: Link, delivery: Delivery) -> None:
        token = getattr(delivery, "lock_token", None)
        state = delivery.remote_state
        if token is None or state is None:
            delivery.settle()
            return
        address = link.source.address or ""
        echo = state
        try:
            if state == Delivery.ACCEPTED:
                self.store.complete(address, token)
            elif state == Delivery.RELEASED:
                self.store.release(address, token)
            elif state == Delivery.MODIFIED:
                if delivery.remote.undeliverable:
                    raise NotImplementedError("defer is not emulated")
                self.store.abandon(address, token)
                delivery.local.failed = True
            elif state == Delivery.REJECTED:
                info = delivery.remote.condition.info if delivery.remote.condition else None
                info = dict(cast(dict[Any, Any], info or {}))
                self.store.dead_letter(
                    address,
                    token,
                    str(info.get("DeadLetterReason") or ""),
                    str(info.get("DeadLetterErrorDescription") or ""),
                )
            else:
                delivery.settle()
                return
        except LockLostError as exc:
            delivery.local.condition = Condition(LOCK_LOST, str(exc))
            echo = Delivery.REJECTED
        except ArgumentError as exc:
            delivery.local.condition = Condition(OUT_OF_RANGE, str(exc))
            echo = Delivery.REJECTED
        except NotImplementedError as exc:
            delivery.local.condition = Condition(NOT_IMPLEMENTED, str(exc))
            echo = Delivery.REJECTED
        delivery.update(echo)
        delivery.settle()
        self.dispatch_all()
