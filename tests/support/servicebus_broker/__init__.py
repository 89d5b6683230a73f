"""A protocol-level Azure Service Bus stand-in for tests, built on python-qpid-proton.

The real ``azure-servicebus`` SDK talks to it over AMQP 1.0 on loopback (connection strings with
``UseDevelopmentEmulator=true``). See README.md for what it emulates and what it does not.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from proton.reactor import ApplicationEvent, Container, EventInjector

from tests.support.servicebus_broker.amqp import TICK_SECONDS, BrokerHandler
from tests.support.servicebus_broker.rights import SharedAccessRules
from tests.support.servicebus_broker.store import QueueOptions, Store

__all__ = ["Broker", "QueueOptions", "SharedAccessRules", "Store"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Lifecycle(BrokerHandler):
    def __init__(
        self,
        store: Store,
        rules: SharedAccessRules,
        host: str,
        port: int,
        started: threading.Event,
    ) -> None:
        super().__init__(store, rules)
        self.host, self.port, self.started = host, port, started
        self.acceptor: Any = None
        self.container: Any = None
        self.transports: list[Any] = []

    def on_reactor_init(self, event: Any) -> None:
        self.container = event.container
        self.acceptor = event.container.listen(f"{self.host}:{self.port}")
        event.container.schedule(TICK_SECONDS, self)
        self.started.set()

    def on_connection_bound(self, event: Any) -> None:
        super().on_connection_bound(event)
        self.transports.append(event.transport)

    def on_stop_broker(self, event: Any) -> None:
        """Stop like a crashed broker: the listening socket and every connection just go away."""
        self.acceptor.close()
        for transport in self.transports:
            sock = getattr(getattr(transport, "_selectable", None), "_delegate", None)
            if isinstance(sock, socket.socket):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    sock.close()
        self.container.stop()


class Broker:
    """The broker in a background thread: ``start()``, ``configure_queue()``, ``stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
        peek_page: int = 3,
    ) -> None:
        """``clock`` (epoch seconds) drives locks, schedules and duplicate detection;
        ``peek_page`` is the most messages one peek answers."""
        self.host = host
        self.port = port or free_port()
        self.store = Store(clock, peek_page)
        self.rules = SharedAccessRules()
        self._started = threading.Event()
        self._injector = EventInjector()
        self._handler = _Lifecycle(self.store, self.rules, self.host, self.port, self._started)
        self._container = Container(self._handler)
        self._container.selectable(self._injector)
        self._thread = threading.Thread(
            target=self._container.run, name=f"servicebus-broker-{self.port}", daemon=True
        )

    @property
    def connection_string(self) -> str:
        return self.connection_string_for("test")

    def connection_string_for(self, key_name: str) -> str:
        """A connection string signing with ``key_name`` (see :meth:`add_key`)."""
        return (
            f"Endpoint=sb://{self.host}:{self.port};SharedAccessKeyName={key_name};"
            "SharedAccessKey=dGVzdA==;UseDevelopmentEmulator=true"
        )

    def add_key(self, key_name: str, claims: set[str]) -> None:
        """A shared access rule granting ``claims`` (``Send``, ``Listen``, ``Manage``)."""
        self.rules.add(key_name, claims)

    @property
    def open_connections(self) -> int:
        return self._handler.open_connections

    @property
    def peak_connections(self) -> int:
        """The most connections that were open at once."""
        return self._handler.peak_connections

    def start(self, timeout: float = 5.0) -> Broker:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the test Service Bus broker did not start")
        with socket.create_connection((self.host, self.port), timeout=timeout):
            pass
        return self

    def configure_queue(
        self,
        name: str,
        lock_duration: float = 60.0,
        max_delivery_count: int = 10,
        duplicate_detection_window: float | None = 600.0,
    ) -> None:
        """Set a queue's lock duration, max delivery count and duplicate detection."""
        self.store.configure(
            name, QueueOptions(lock_duration, max_delivery_count, duplicate_detection_window)
        )

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._injector.trigger(ApplicationEvent("stop_broker"))
            self._thread.join(timeout)
        self._injector.close()
