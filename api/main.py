"""Run one API server: ``python -m api``."""

from __future__ import annotations

import structlog
import uvicorn

from api.app import create_app
from common.logging import configure_logging
from common.settings import load_settings


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if not settings.keys:
        structlog.get_logger("ingest.api").warning(
            "no API_KEYS set: every caller has full access, so the API listens on "
            f"{settings.host} only",
        )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        limit_concurrency=settings.max_connections,
    )


if __name__ == "__main__":
    main()
