"""Hooks around message processing: chores that ride along with the consumer loop instead of
being wired into it (dramatiq's middleware). Each hook overrides what it needs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from common.queue import ReceivedMessage
from worker import metrics
from worker.decision import Complete, DeadLetter, Decision, HandBack, Reschedule

if TYPE_CHECKING:
    from common.backup.scheduler import BackupScheduler
    from common.usecases.reconcile import Reconciler
    from common.usecases.retention import Retention
    from common.usecases.summary import SummaryFold

log = structlog.get_logger("ingest.worker")


class Hook:
    """No-op hook points; a hook overrides the ones it uses."""

    def started(self, stop: threading.Event) -> None:
        """The consumer starts; ``stop`` is set when it should end."""

    def before_receive(self) -> None:
        """The consumer is about to wait for the next message."""

    def after_settle(
        self, message: ReceivedMessage, table: str, decision: Decision, seconds: float
    ) -> None:
        """A message was handled in ``seconds`` and settled as ``decision``."""

    def stopped(self) -> None:
        """The consumer has stopped."""


class Heartbeat(Hook):
    """Touch a file on every loop, for the container's health check."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def before_receive(self) -> None:
        try:
            self.path.touch()
        except OSError as exc:
            log.warning("cannot touch the heartbeat file", error=str(exc))


class ScheduledBackups(Hook):
    """Take the scheduled backup runs, from whichever worker wins each."""

    def __init__(self, scheduler: BackupScheduler) -> None:
        self.scheduler = scheduler

    def before_receive(self) -> None:
        self.scheduler.tick_quietly()


class Chores(Hook):
    """Reconciliation, retention and the fold of the reports' summary, in a thread beside the
    loop, so that a long part does not hold them up."""

    def __init__(
        self, reconciler: Reconciler, retention: Retention, fold: SummaryFold | None = None
    ) -> None:
        self.reconciler = reconciler
        self.retention = retention
        self.fold = fold
        self._thread: threading.Thread | None = None

    def started(self, stop: threading.Event) -> None:
        def run() -> None:
            while not stop.wait(min(1.0, self.reconciler.timing.every_seconds)):
                self.reconciler.run_if_due()
                self.retention.run_if_due()
                if self.fold is not None:
                    self.fold.run_if_due()

        self._thread = threading.Thread(target=run, name="chores", daemon=True)
        self._thread.start()

    def stopped(self) -> None:
        if self._thread is not None:
            self._thread.join()


class Metrics(Hook):
    """The worker's own Prometheus metrics (``WORKER_METRICS_PORT``)."""

    def after_settle(
        self, message: ReceivedMessage, table: str, decision: Decision, seconds: float
    ) -> None:
        if isinstance(decision, DeadLetter):
            settlement, reason, outcome = "dead_letter", decision.reason, decision.reason
        elif isinstance(decision, HandBack):
            reason = decision.why.split(":", 1)[0]
            settlement, outcome = "abandon", reason
        elif isinstance(decision, Reschedule):
            settlement, reason, outcome = "complete", "done", "waiting"
        else:
            assert isinstance(decision, Complete)
            done = decision.note if decision.note.startswith(("LeaseLost", "JobCancelled")) else ""
            reason = done.split(":", 1)[0] or "done"
            settlement, outcome = "complete", reason
        metrics.SETTLED.labels(settlement, reason).inc()
        metrics.PART_SECONDS.labels(table, outcome).observe(seconds)
