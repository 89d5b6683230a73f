"""The consumer loop: receive, process, and settle every outcome in one place."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from common.backup.scheduler import scheduler_for
from common.bootstrap import Services
from common.errors import IngestError, JobCancelled, LeaseLost, LockLost, PermanentError
from common.messages import JobMessage
from common.queue import MAX_DELIVERY_REASON, ReceivedMessage
from common.usecases.reconcile import Reconciler, ReconcileTiming
from common.usecases.retention import Retention, RetentionPolicy
from worker import metrics
from worker.pipeline import Done, Interrupted, Outcome, PartIngestor, WaitUntil
from worker.renewer import LockRenewer

log = structlog.get_logger("ingest.worker")


class Consumer:
    """Takes job messages off the queue until ``stop`` is set."""

    def __init__(self, services: Services, owner: str, stop: threading.Event) -> None:
        self.services = services
        self.queue = services.queue
        self.stop = stop
        self.ingestor = PartIngestor(services, owner, stop)
        settings = services.settings
        self.reconciler = Reconciler(
            services.db,
            services.jobs,
            services.queue,
            owner,
            ReconcileTiming(
                every_seconds=settings.reconcile_every_seconds,
                unsent_after_seconds=settings.unsent_after_seconds,
                quiet_seconds=settings.reconcile_quiet_seconds,
            ),
        )
        self.retention = Retention(
            services.db,
            services.jobs,
            services.blob,
            settings.blob_container_name_historic,
            owner,
            RetentionPolicy(job_days=settings.job_retention_days),
        )
        self.backups = scheduler_for(services, owner)

    def run(self) -> None:
        log.info("worker started", queue=self.services.settings.queue_name)
        # Reconciliation and retention run beside the loop, so a long part does not hold them up.
        reconciling = threading.Thread(target=self._reconcile, name="reconcile", daemon=True)
        reconciling.start()
        while not self.stop.is_set():
            self.run_once()
        reconciling.join()
        log.info("worker stopped")

    def _reconcile(self) -> None:
        while not self.stop.wait(min(1.0, self.reconciler.timing.every_seconds)):
            self.reconciler.run_if_due()
            self.retention.run_if_due()

    def run_once(self) -> bool:
        """Receive and process at most one message; return whether one was processed."""
        self._beat()
        if self.backups is not None:
            self.backups.tick_quietly()
        try:
            message = self.queue.receive(self.services.settings.receive_wait_seconds)
        except IngestError as exc:
            log.warning("cannot receive from the queue", error=str(exc))
            self.stop.wait(self.services.settings.receive_wait_seconds)
            return False
        if message is None:
            return False
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            message_id=message.message_id, attempt=message.delivery_count
        )
        try:
            self.process(message)
        finally:
            structlog.contextvars.clear_contextvars()
        return True

    def process(self, message: ReceivedMessage) -> None:
        job: JobMessage | None = None
        outcome: Outcome | BaseException
        started = time.monotonic()
        try:
            job = JobMessage.decode(message.body)
            structlog.contextvars.bind_contextvars(job_id=job.job_id, part=job.part)
            interval = max(0.05, self.queue.lock_duration_seconds / 3)
            with LockRenewer(
                self.queue, message, interval, lambda: self.ingestor.renew_lease(job)
            ) as renewer:
                outcome = self.ingestor.handle(job, message.delivery_count, renewer.lost)
        except Exception as exc:
            outcome = exc
        table = structlog.contextvars.get_contextvars().get("table", "unknown")
        metrics.PART_SECONDS.labels(table, _outcome_name(outcome)).observe(
            time.monotonic() - started
        )
        self.settle(message, job, outcome)

    def settle(
        self, message: ReceivedMessage, job: JobMessage | None, outcome: Outcome | BaseException
    ) -> None:
        """The one place that turns an outcome into complete, abandon or dead-letter."""
        try:
            if isinstance(outcome, Done):
                metrics.SETTLED.labels("complete", "done").inc()
                self.queue.complete(message)
                log.info("message completed", note=outcome.note)
            elif isinstance(outcome, WaitUntil):
                assert job is not None
                self.queue.send([job.later_send(outcome.at, "wait")])
                self.queue.complete(message)
                log.info("message rescheduled", until=f"{outcome.at.isoformat()}Z", why=outcome.why)
            elif isinstance(outcome, LeaseLost):
                self.queue.complete(message)
                log.warning("part taken over by another worker", error=str(outcome))
            elif isinstance(outcome, JobCancelled):
                self.queue.complete(message)
                log.info("job cancelled; delivery stopped at a block boundary")
            elif isinstance(outcome, Interrupted):
                self._abandon(message, job, str(outcome), backoff=False)
            elif isinstance(outcome, PermanentError):
                self._dead_letter(message, job, outcome.reason, str(outcome))
            elif message.delivery_count >= self.queue.max_delivery_count:
                self._dead_letter(
                    message,
                    job,
                    MAX_DELIVERY_REASON,
                    f"failed on all {message.delivery_count} deliveries; last error: "
                    f"{_describe(outcome)}",
                )
            else:
                self._abandon(message, job, _describe(outcome), backoff=True)
                if not isinstance(outcome, IngestError):
                    log.error("unexpected error", exc_info=outcome)
        except LockLost as exc:
            log.warning("could not settle: lock lost", error=str(exc))
        except IngestError as exc:
            log.error("could not settle; the message will be delivered again", error=str(exc))

    def _abandon(
        self, message: ReceivedMessage, job: JobMessage | None, why: str, *, backoff: bool
    ) -> None:
        metrics.SETTLED.labels("abandon", why.split(":", 1)[0]).inc()
        if job is not None:
            self._quietly(lambda: self.ingestor.release(job))
        if backoff:
            settings = self.services.settings
            delay = min(
                settings.transient_backoff_seconds * 2 ** (message.delivery_count - 1),
                settings.transient_backoff_max_seconds,
            )
            log.warning("delivery failed; handing the message back", error=why, after=delay)
            # Hold the message (its lock is good for a while) so a short outage costs no delivery.
            self.stop.wait(min(delay, self.queue.lock_duration_seconds * 0.8))
        self.queue.abandon(message)
        log.info("message abandoned", error=why)

    def _dead_letter(
        self, message: ReceivedMessage, job: JobMessage | None, reason: str, description: str
    ) -> None:
        metrics.SETTLED.labels("dead_letter", reason).inc()
        self.queue.dead_letter(message, reason, description)
        log.error("message dead-lettered", reason=reason, description=description)
        if job is not None:
            self._quietly(
                lambda: self.services.jobs.mark_failed(job.job_id, f"{reason}: {description}")
            )

    def _quietly(self, action: Callable[[], None]) -> None:
        try:
            action()
        except IngestError as exc:
            log.warning("bookkeeping failed", error=str(exc))

    def _beat(self) -> None:
        path = self.services.settings.heartbeat_file
        if path is not None:
            try:
                path.touch()
            except OSError as exc:
                log.warning("cannot touch the heartbeat file", error=str(exc))


def _outcome_name(outcome: Outcome | BaseException) -> str:
    if isinstance(outcome, Done):
        return "done"
    if isinstance(outcome, WaitUntil):
        return "waiting"
    return getattr(outcome, "reason", type(outcome).__name__)


def _describe(exc: BaseException | Outcome) -> str:
    if isinstance(exc, IngestError):
        return f"{exc.reason}: {exc}"
    return f"{type(exc).__name__}: {exc}"
