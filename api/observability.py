"""Request ids on every API log line, and the API's own request latency."""

from __future__ import annotations

import os
import re
import time
import uuid

import structlog
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# prometheus_client keeps metrics in files of this folder, shared by the API's processes,
# when it is set as the library is imported.
SHARED_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = structlog.get_logger("ingest.api")


class RequestContext:
    """Bind a request id (the client's ``X-Request-ID`` or a new one) to every log line of the
    request, echo it in the response, and time the request per route."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        self.app = app
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                self.latency.labels(scope["method"], path, str(status)).observe(
                    time.perf_counter() - started
                )


def request_latency(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "ingest_api_request_seconds",
        "API request latency by method, route and status.",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )


def metric_registries() -> tuple[CollectorRegistry, CollectorRegistry]:
    """The registry ``/metrics`` serves, and the one the API's own metrics are made in.

    In one process they are one. With several (:data:`SHARED_METRICS_DIR` set), each process
    writes its own metrics to files, and ``/metrics`` adds up every process's files instead.
    """
    served = CollectorRegistry()
    shared = os.environ.get(SHARED_METRICS_DIR)
    if not shared:
        return served, served
    MultiProcessCollector(served, path=shared)  # type: ignore[no-untyped-call]
    return served, CollectorRegistry()
