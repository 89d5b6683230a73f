"""The consumer loop: receive, hand the message to the ingestor, decide, settle.

Transport only: what to do with a message is :mod:`worker.decision`'s, what a message does is
the ingestor's (:mod:`common.usecases.ingest_part`), chores ride along as :mod:`worker.hooks`.
This is the one place that settles a message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import structlog

from common.errors import IngestError, LockLost
from common.model.messages import JobMessage
from common.model.outcomes import Outcome
from common.queue import JobQueue, ReceivedMessage
from common.stores.job_states import JobStates
from common.usecases.ingest_part import PartIngestor
from worker.decision import Complete, DeadLetter, Decision, DeliveryPolicy, HandBack, Reschedule
from worker.hooks import Hook
from worker.renewer import LockRenewer

log = structlog.get_logger("ingest.worker")


class Consumer:
    """Takes job messages off ``queue`` until ``stop`` is set."""

    def __init__(
        self,
        queue: JobQueue,
        ingestor: PartIngestor,
        policy: DeliveryPolicy,
        states: JobStates,
        stop: threading.Event,
        *,
        receive_wait_seconds: float = 1.0,
        hooks: Sequence[Hook] = (),
    ) -> None:
        self.queue = queue
        self.ingestor = ingestor
        self.policy = policy
        self.states = states
        self.stop = stop
        self.receive_wait_seconds = receive_wait_seconds
        self.hooks = list(hooks)

    def run(self) -> None:
        log.info("worker started")
        for hook in self.hooks:
            hook.started(self.stop)
        try:
            while not self.stop.is_set():
                self.run_once()
        finally:
            for hook in self.hooks:
                hook.stopped()
        log.info("worker stopped")

    def run_once(self) -> bool:
        """Receive and process at most one message; return whether one was processed."""
        for hook in self.hooks:
            hook.before_receive()
        try:
            message = self.queue.receive(self.receive_wait_seconds)
        except IngestError as exc:
            log.warning("cannot receive from the queue", error=str(exc))
            self.stop.wait(self.receive_wait_seconds)
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
            if not isinstance(exc, IngestError):
                log.error("unexpected error", exc_info=exc)
        decision = self.policy.decide(outcome, message.delivery_count)
        self.settle(message, job, decision)
        table = structlog.contextvars.get_contextvars().get("table", "unknown")
        for hook in self.hooks:
            hook.after_settle(message, table, decision, time.monotonic() - started)

    def settle(self, message: ReceivedMessage, job: JobMessage | None, decision: Decision) -> None:
        """Carry ``decision`` out on the queue (and on the job, for a dead letter)."""
        try:
            if isinstance(decision, Complete):
                self.queue.complete(message)
                log.info("message completed", note=decision.note)
            elif isinstance(decision, Reschedule):
                assert job is not None
                self.queue.send([job.later_send(decision.at, "wait")])
                self.queue.complete(message)
                log.info(
                    "message rescheduled", until=f"{decision.at.isoformat()}Z", why=decision.why
                )
            elif isinstance(decision, HandBack):
                self._hand_back(message, job, decision)
            else:
                self._dead_letter(message, job, decision)
        except LockLost as exc:
            log.warning("could not settle: lock lost", error=str(exc))
        except IngestError as exc:
            log.error("could not settle; the message will be delivered again", error=str(exc))

    def _hand_back(self, message: ReceivedMessage, job: JobMessage | None, back: HandBack) -> None:
        if job is not None:
            self._quietly(lambda: self.ingestor.release(job))
        if back.after_seconds > 0:
            log.warning(
                "delivery failed; handing the message back",
                error=back.why,
                after=back.after_seconds,
            )
            # Hold the message (its lock is good for a while) so a short outage costs no delivery.
            self.stop.wait(min(back.after_seconds, self.queue.lock_duration_seconds * 0.8))
        self.queue.abandon(message)
        log.info("message abandoned", error=back.why)

    def _dead_letter(
        self, message: ReceivedMessage, job: JobMessage | None, dead: DeadLetter
    ) -> None:
        self.queue.dead_letter(message, dead.reason, dead.description)
        log.error("message dead-lettered", reason=dead.reason, description=dead.description)
        if job is not None:
            failed = job
            self._quietly(
                lambda: self.states.fail(failed.job_id, f"{dead.reason}: {dead.description}")
            )

    @staticmethod
    def _quietly(action: Callable[[], None]) -> None:
        try:
            action()
        except IngestError as exc:
            log.warning("bookkeeping failed", error=str(exc))
