"""The administration API's runtime properties of a queue, over plain HTTP on loopback.

Only ``GET /<queue>?enrich=false&api-version=...`` (what
``ServiceBusAdministrationClient.get_queue_runtime_properties`` sends) is answered, with the
Atom entry and ``CountDetails`` Service Bus returns (the shape of the SDK's recorded responses,
``test_mgmt_queue_get_runtime_properties_basic``), counted from the broker's :class:`Store`.
A key without the Manage claim gets Service Bus's 401 ``<Error>`` document. Microsoft's own
emulator sample points the Python SDK at a plain-HTTP administration endpoint the same way
(:func:`admin_client`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from tests.support.servicebus_broker.rights import MANAGE, SharedAccessRules
from tests.support.servicebus_broker.store import Store, entity_path

if TYPE_CHECKING:
    from azure.servicebus.management import ServiceBusAdministrationClient

ATOM = "http://www.w3.org/2005/Atom"
CONNECT = "http://schemas.microsoft.com/netservices/2010/10/servicebus/connect"
COUNTS = "http://schemas.microsoft.com/netservices/2011/06/servicebus"


def _entry(name: str, active: int, scheduled: int, dead: int, when: str) -> str:
    counts = (
        f'<CountDetails xmlns:d2p1="{COUNTS}">'
        f"<d2p1:ActiveMessageCount>{active}</d2p1:ActiveMessageCount>"
        f"<d2p1:DeadLetterMessageCount>{dead}</d2p1:DeadLetterMessageCount>"
        f"<d2p1:ScheduledMessageCount>{scheduled}</d2p1:ScheduledMessageCount>"
        "<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>"
        "<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount>"
        "</CountDetails>"
    )
    return (
        f'<entry xmlns="{ATOM}"><title type="text">{escape(name)}</title>'
        f"<published>{when}</published><updated>{when}</updated>"
        f'<content type="application/xml"><QueueDescription xmlns="{CONNECT}" '
        'xmlns:i="http://www.w3.org/2001/XMLSchema-instance">'
        "<MaxSizeInMegabytes>1024</MaxSizeInMegabytes><SizeInBytes>0</SizeInBytes>"
        f"<MessageCount>{active + scheduled + dead}</MessageCount><Status>Active</Status>"
        f"<CreatedAt>{when}</CreatedAt><UpdatedAt>{when}</UpdatedAt>"
        f"<AccessedAt>{when}</AccessedAt>{counts}"
        "<EntityAvailabilityStatus>Available</EntityAvailabilityStatus>"
        "</QueueDescription></content></entry>"
    )


def _error(detail: str) -> str:
    return f"<Error><Code>401</Code><Detail>{escape(detail)}</Detail></Error>"


class AdminEndpoint:
    """The HTTP server in a background thread; ``requests`` counts what it answered."""

    def __init__(self, store: Store, rules: SharedAccessRules) -> None:
        self.store = store
        self.rules = rules
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                status, body, content_type = endpoint.answer(
                    urlsplit(self.path).path, self.headers.get("Authorization", "")
                )
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, path: str, authorization: str) -> tuple[int, str, str]:
        claims = self.rules.claims_of_token(authorization) or frozenset()
        if MANAGE not in claims:
            detail = "Manage,EntityRead claims required for this operation."
            return 401, _error(detail), "application/xml; charset=utf-8"
        name = entity_path(path)
        active, scheduled, dead = self.store.counts(name)
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entry = _entry(name, active, scheduled, dead, when)
        return 200, entry, "application/atom+xml;type=entry;charset=utf-8"

    def start(self) -> AdminEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def admin_endpoint(store: Store, rules: SharedAccessRules) -> Iterator[AdminEndpoint]:
    endpoint = AdminEndpoint(store, rules).start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


def admin_client(connection_string: str, url: str) -> ServiceBusAdministrationClient:
    """The SDK's administration client for ``connection_string``, sending to ``url``: the SDK
    builds ``https://<namespace>`` itself, so its base URL is replaced, as Microsoft's emulator
    sample for Python does."""
    from azure.servicebus.management import ServiceBusAdministrationClient

    client = ServiceBusAdministrationClient.from_connection_string(connection_string)
    client._impl._client._base_url = url
    return client
