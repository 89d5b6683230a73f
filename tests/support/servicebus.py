"""The test Service Bus broker (``tests/support/servicebus_broker``) as context managers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tests.support.services import unavailable

if TYPE_CHECKING:
    from tests.support.servicebus_broker import Broker


@contextmanager
def servicebus_broker(**options: Any) -> Iterator[Broker]:
    """A running broker on a free loopback port; use ``broker.connection_string`` and
    ``broker.configure_queue(...)``; ``options`` go to :class:`Broker` (``clock``,
    ``peek_page``). A broker that cannot start skips (locally) or fails (CI)."""
    try:
        from tests.support.servicebus_broker import Broker

        broker = Broker(**options).start()
    except (ImportError, OSError, RuntimeError) as exc:
        unavailable(f"the test Service Bus broker ({type(exc).__name__}: {exc})")
        raise  # unreachable: unavailable() raises
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def servicebus_connection_string() -> Iterator[str]:
    """A running broker's connection string (plain AMQP on loopback, any key accepted)."""
    with servicebus_broker() as broker:
        yield broker.connection_string
