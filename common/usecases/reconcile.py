"""Keep the invariant that no job is stranded: an unfinished job always has a message in
flight or a live lease on one of its parts.

Whatever breaks it (an API that died between recording a job and sending its messages, a
worker that died after claiming such a job, a lost message, a race between two operator
actions, a broker that dead-lettered a message on its own) is repaired here, by one worker at a
time (the ``reconcile`` lease), every :attr:`ReconcileTiming.every_seconds`:

1. *Unsent jobs*: a queued job still not marked sent ``unsent_after_seconds`` after it was
   created is claimed and its messages are sent, with the ids the API would have used.
2. *Stranded parts*: an unfinished part of a sent job that no worker holds and that nothing
   touched for ``quiet_seconds`` is looked for in the queue (every message, scheduled and
   locked ones included) and in the dead-letter queue. Found in the queue: all is well. Found
   only among the dead letters: its job ends failed with the dead letter's reason (an operator
   can resubmit it). Found nowhere: a fresh message is sent for it.
3. *Unpublished staged jobs*: a staged load (atomic, thresholds, replace, empty, dry run)
   whose parts are all staged is published by whoever finishes its last part. One that is
   still unpublished after ``quiet_seconds`` untouched, with no message of it in the queue
   (its last worker died between staging and publishing, and its message was lost), gets a
   fresh message for its first part; the worker taking it publishes the job.

The database is read before and after the queue, and a part is acted on only if it did not
change in between, so a message consumed or sent meanwhile is never taken for a lost one. A
repair that still races (a message sent by someone else just then) only sends a second
message for the part, which is ingested once all the same (or a second publishing message,
of which one publishes). A stranded part or unpublished job is therefore repaired within
``every_seconds + quiet_seconds`` (90 s with the defaults).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from common.errors import IngestError, MalformedMessage
from common.model.messages import JobMessage
from common.queue import DeadLetter, JobQueue
from common.sql.db import Database, utcnow
from common.stores.job_states import JobStates
from common.stores.jobs import JobStore
from common.stores.named_leases import try_lease
from common.stores.sends import JobSends

log = structlog.get_logger("ingest.reconcile")

LEASE_NAME = "reconcile"
_DEAD_LETTER_PAGE = 500


@dataclass(frozen=True)
class ReconcileTiming:
    every_seconds: float = 30.0
    unsent_after_seconds: float = 60.0
    quiet_seconds: float = 60.0


@dataclass
class Repairs:
    """What one pass did, for the log and for tests."""

    sent: list[str] = field(default_factory=list)
    resent: list[tuple[str, int]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)  # unpublished jobs sent to publish


def _part_of(body: bytes) -> tuple[str, int] | None:
    try:
        message = JobMessage.decode(body)
    except MalformedMessage:
        return None
    return message.job_id, message.part


def _all_dead_letters(queue: JobQueue) -> Iterator[DeadLetter]:
    offset = 0
    while True:
        page, _ = queue.list_dead_letters(_DEAD_LETTER_PAGE, offset)
        yield from page
        if len(page) < _DEAD_LETTER_PAGE:
            return
        offset += len(page)


class Reconciler:
    """Runs the repairs above; :meth:`run_if_due` from a worker, :meth:`run` in tests."""

    def __init__(
        self,
        db: Database,
        jobs: JobStore,
        sends: JobSends,
        states: JobStates,
        queue: JobQueue,
        owner: str,
        timing: ReconcileTiming | None = None,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.sends = sends
        self.states = states
        self.queue = queue
        self.owner = owner
        self.timing = timing or ReconcileTiming()
        self._last = float("-inf")

    def run_if_due(self) -> None:
        """One pass if ``every_seconds`` have passed since the last; failures are logged."""
        if time.monotonic() - self._last < self.timing.every_seconds:
            return
        self._last = time.monotonic()
        try:
            self.run()
        except IngestError as exc:
            log.warning("reconciliation failed; it runs again later", error=str(exc))

    def run(self) -> Repairs:
        """One pass, if this process holds the reconcile lease."""
        repairs = Repairs()
        if not try_lease(self.db, LEASE_NAME, self.owner, self.timing.every_seconds):
            return repairs
        self._send_unsent(repairs)
        self._repair_stranded(repairs)
        self._repair_unpublished(repairs)
        return repairs

    def _send_unsent(self, repairs: Repairs) -> None:
        created_before = utcnow() - timedelta(seconds=self.timing.unsent_after_seconds)
        for job_id in self.sends.unsent(created_before):
            try:
                if not self.sends.claim(job_id):
                    continue
                pending = self.jobs.pending_parts(job_id)
                try:
                    self.queue.send([JobMessage(job_id, n).first_send() for n in pending])
                except IngestError:
                    self.sends.release(job_id)
                    raise
            except IngestError as exc:
                log.warning("cannot queue an unsent job", job_id=job_id, error=str(exc))
                continue
            repairs.sent.append(job_id)
            log.warning("job queued by reconciliation: its upload never sent it", job_id=job_id)

    def _repair_stranded(self, repairs: Repairs) -> None:
        quiet_since = utcnow() - timedelta(seconds=self.timing.quiet_seconds)
        before = self.states.stranded_candidates(quiet_since)
        if not before:
            return
        in_queue = {part for body in self.queue.peek_active() if (part := _part_of(body))}
        dead: dict[tuple[str, int], DeadLetter] = {}
        for dead_letter in _all_dead_letters(self.queue):
            if (part := _part_of(dead_letter.body)) is not None:
                dead.setdefault(part, dead_letter)
        after = self.states.stranded_candidates(quiet_since)
        for key, stamp in sorted(before.items()):
            if key in in_queue or after.get(key) != stamp:
                continue
            job_id, part_no = key
            letter = dead.get(key)
            if letter is not None:
                self.states.fail(job_id, f"{letter.reason}: {letter.description}")
                repairs.failed.append(job_id)
                log.warning(
                    "job failed: its message was dead-lettered", job_id=job_id, part=part_no
                )
                continue
            self.queue.send([JobMessage(job_id, part_no).later_send(None, "repair")])
            self.states.touch(job_id)
            repairs.resent.append(key)
            log.warning("stranded part queued again", job_id=job_id, part=part_no)

    def _repair_unpublished(self, repairs: Repairs) -> None:
        quiet_since = utcnow() - timedelta(seconds=self.timing.quiet_seconds)
        before = self.states.unpublished_candidates(quiet_since)
        if not before:
            return
        in_queue = {part[0] for body in self.queue.peek_active() if (part := _part_of(body))}
        after = self.states.unpublished_candidates(quiet_since)
        for job_id, stamp in sorted(before.items()):
            if job_id in in_queue or after.get(job_id) != stamp:
                continue
            self.queue.send([JobMessage(job_id, 0).later_send(None, "publish")])
            self.states.touch(job_id)
            repairs.published.append(job_id)
            log.warning("staged job left unpublished queued again to publish", job_id=job_id)
