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

from common.backup.scheduler import BackupScheduler
from common.bootstrap import Services, build_services
from common.logging import configure_logging
from common.settings import load_settings, renamed_in
from common.sql.migrate import upgrade
from common.usecases.ingest_part import IngestSettings, PartIngestor
from common.usecases.reconcile import Reconciler, ReconcileTiming
from common.usecases.retention import Retention, RetentionPolicy
from common.usecases.summary import SummaryFold
from worker import metrics
from worker.consumer import Consumer
from worker.decision import DeliveryPolicy
from worker.hooks import Chores, Heartbeat, Hook, Metrics, ScheduledBackups

log = structlog.get_logger("ingest.worker")


def build_consumer(services: Services, stop: threading.Event) -> Consumer:
    """A consumer with a fresh owner id and its hooks, wired from ``services``; tests build
    theirs the same way."""
    settings = services.settings
    owner = str(uuid.uuid4())
    ingestor = PartIngestor(
        services.db,
        services.jobs,
        services.parts,
        services.states,
        services.uploads,
        services.retry,
        IngestSettings.of(settings, services.queue.lock_duration_seconds),
        owner,
        stop,
    )
    reconciler = Reconciler(
        services.db,
        services.jobs,
        services.sends,
        services.states,
        services.queue,
        owner,
        ReconcileTiming(
            every_seconds=settings.reconcile_every_seconds,
            unsent_after_seconds=settings.unsent_after_seconds,
            quiet_seconds=settings.reconcile_quiet_seconds,
        ),
    )
    retention = Retention(
        services.db,
        services.jobs,
        services.uploads,
        owner,
        RetentionPolicy(job_days=settings.job_retention_days),
    )
    fold = SummaryFold(services.db, owner, settings.hire_counts_fold_seconds)
    hooks: list[Hook] = [Chores(reconciler, retention, fold), Metrics()]
    if settings.heartbeat_file is not None:
        hooks.append(Heartbeat(settings.heartbeat_file))
    if settings.backup_schedule:
        scheduler = BackupScheduler(
            services.db,
            services.backups,
            settings.backup_schedule,
            settings.backup_retention,
            owner,
        )
        hooks.append(ScheduledBackups(scheduler))
    return Consumer(
        services.queue,
        ingestor,
        DeliveryPolicy(
            max_deliveries=services.queue.max_delivery_count,
            backoff_seconds=settings.transient_backoff_seconds,
            backoff_max_seconds=settings.transient_backoff_max_seconds,
        ),
        services.states,
        stop,
        receive_wait_seconds=settings.receive_wait_seconds,
        hooks=hooks,
    )


def main() -> None:
    settings = load_settings()
    # The system allocator hands freed blocks back; Arrow's default pool keeps them, and a
    # worker's footprint would then follow the largest block it ever saw.
    pa.set_memory_pool(pa.system_memory_pool())
    configure_logging(settings.log_level, settings.log_format)
    for renamed in renamed_in(os.environ):
        log.warning(renamed)
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
