"""Build and run one worker process: ``python -m worker``."""

from __future__ import annotations

import os
import signal
import socket
import threading
import uuid
from dataclasses import replace
from types import FrameType

import pyarrow as pa
import structlog
from prometheus_client import start_http_server

from common.bootstrap import Services, build_services
from common.logging import configure_logging
from common.migrate import upgrade
from common.settings import load_settings
from worker import metrics
from worker.consumer import Consumer

log = structlog.get_logger("ingest.worker")


def build_consumer(services: Services, stop: threading.Event) -> Consumer:
    """A consumer with a fresh owner id; tests build theirs the same way."""
    return Consumer(services, owner=str(uuid.uuid4()), stop=stop)


def main() -> None:
    settings = load_settings()
    # The system allocator hands freed blocks back; Arrow's default pool keeps them, and a
    # worker's footprint would then follow the largest block it ever saw.
    pa.set_memory_pool(pa.system_memory_pool())
    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping after the current block", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    services = build_services(settings)
    services.retry = replace(services.retry, on_retry=metrics.count_retry)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    try:
        upgrade(services.db)
        consumer = build_consumer(services, stop)
        log.info(
            "worker ready",
            owner=consumer.ingestor.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        consumer.run()
    finally:
        services.close()


if __name__ == "__main__":
    main()
