"""Message counts of a Service Bus queue from the administration API, where the identity may
read them; used by ``servicebus.py`` only.

The runtime properties (``ServiceBusAdministrationClient.get_queue_runtime_properties``) count
a queue's messages in one HTTP request instead of peeking every message. Reading them needs
the ``Manage`` claim (the "Azure Service Bus Data Owner" role, or a shared access rule with
Manage); without it Service Bus answers 401 and the adapter counts by peeking instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from azure.core.exceptions import AzureError, HttpResponseError

if TYPE_CHECKING:
    from azure.servicebus.management import ServiceBusAdministrationClient

log = structlog.get_logger("ingest.queue")

_NOT_ALLOWED = (401, 403)


@dataclass(frozen=True)
class QueueCounts:
    """``active`` counts waiting and locked messages, ``scheduled`` those not yet visible."""

    active: int
    scheduled: int
    dead_lettered: int


class RuntimeCounts:
    """Counts from the runtime properties, or None when they cannot be had: no administration
    client, an identity without Manage (remembered: not asked again), or a failed request."""

    def __init__(
        self,
        factory: Callable[[], ServiceBusAdministrationClient] | None,
        queue_name: str,
    ) -> None:
        self._factory = factory
        self._queue_name = queue_name
        self._client: ServiceBusAdministrationClient | None = None
        self._lock = threading.Lock()

    def get(self) -> QueueCounts | None:
        with self._lock:
            if self._factory is None:
                return None
            try:
                if self._client is None:
                    self._client = self._factory()
                found = self._client.get_queue_runtime_properties(self._queue_name)
            except HttpResponseError as exc:
                if exc.status_code in _NOT_ALLOWED:
                    log.warning(
                        "queue counts come from peeking: this identity may not read the "
                        "queue's runtime properties (needs the Manage claim)",
                        queue=self._queue_name,
                        status=exc.status_code,
                    )
                    self._factory = None
                    self._close_client()
                else:
                    log.info("runtime properties unavailable; peeking", error=str(exc)[:300])
                return None
            except AzureError as exc:
                log.info("runtime properties unavailable; peeking", error=str(exc)[:300])
                return None
        return QueueCounts(
            active=found.active_message_count or 0,
            scheduled=found.scheduled_message_count or 0,
            dead_lettered=found.dead_letter_message_count or 0,
        )

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with suppress(AzureError):  # nothing left to keep
                client.close()

    def close(self) -> None:
        with self._lock:
            self._close_client()
