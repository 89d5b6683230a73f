"""Run the API server: ``python -m api``, in ``API_PROCESSES`` processes sharing one socket."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile

import structlog
import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from api.app import create_app
from api.observability import SHARED_METRICS_DIR
from common.listening import CannotListen, listen
from common.logging import configure_logging
from common.settings import Settings, load_settings, renamed_in

EXIT_CANNOT_LISTEN = 2


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    for renamed in renamed_in(os.environ):
        structlog.get_logger("ingest.api").warning(renamed)
    # Bound here rather than by uvicorn, so that a taken port is one sentence, not a traceback.
    try:
        sock = listen(settings.host, settings.port)
    except CannotListen as exc:
        print(f"cannot start the API: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CANNOT_LISTEN) from None
    if not settings.keys:
        structlog.get_logger("ingest.api").warning(
            "no API_KEYS set: every caller has full access, so the API listens on "
            f"{settings.host} only",
        )
    if settings.api_processes == 1:
        uvicorn.Server(_config(settings, create_app(settings))).run(sockets=[sock])
    else:
        _serve_in_processes(settings, sock)


def _config(settings: Settings, app: FastAPI | str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        workers=settings.api_processes,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=settings.max_connections,
    )


def _serve_in_processes(settings: Settings, sock: socket.socket) -> None:
    """Serve from ``API_PROCESSES`` processes accepting on ``sock``, each built by
    :func:`process_app`; one that dies is replaced, and one that cannot start stops them all.
    Their request metrics are kept in files of a folder of this run, which each process reads
    back whole on ``/metrics``."""
    metrics = tempfile.mkdtemp(prefix="ingest-api-metrics-")
    # Read by the processes when they import prometheus_client: set before they start.
    os.environ[SHARED_METRICS_DIR] = metrics
    try:
        supervisor = Multiprocess(_config(settings, f"{__name__}:process_app"), sockets=[sock])
        supervisor.run()
    finally:
        shutil.rmtree(metrics, ignore_errors=True)
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise SystemExit(STARTUP_FAILURE)


def process_app() -> FastAPI:
    """The app of one of several API processes, each started afresh from the environment."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


if __name__ == "__main__":
    main()
