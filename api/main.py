"""Run one API server: ``python -m api``."""

from __future__ import annotations

import os
import sys

import structlog
import uvicorn

from api.app import create_app
from common.listening import CannotListen, listen
from common.logging import configure_logging
from common.settings import load_settings, renamed_in

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
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=settings.max_connections,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
