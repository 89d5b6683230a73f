"""Replay or purge a dead letter, one operator action per dead letter.

Resubmit and purge of the same dead letter exclude each other: the first to insert the dead
letter's claim acts, and any other request for it, at the same time or later, is refused with
:class:`~common.errors.DeadLetterTaken` (see :mod:`common.stores.claims`). Until a claim left
by a request that died is taken over, the job's state is kept consistent by the workers'
reconciliation (see :mod:`common.usecases.reconcile`).
"""

from __future__ import annotations

import structlog

from common.errors import MalformedMessage, MessageNotFound, UnknownJob
from common.model.jobs import Job
from common.model.messages import JobMessage
from common.queue import DeadLetter, JobQueue
from common.stores.claims import PURGE, RESUBMIT, DeadLetterClaims
from common.stores.job_states import JobStates
from common.stores.jobs import JobStore

log = structlog.get_logger("ingest.dead_letters")


def job_of(letter: DeadLetter) -> JobMessage | None:
    """The job message a dead letter carries, or ``None`` for a body that is not one."""
    try:
        return JobMessage.decode(letter.body)
    except MalformedMessage:
        return None


class DeadLetters:
    """The operator's actions on dead letters."""

    def __init__(
        self, queue: JobQueue, jobs: JobStore, states: JobStates, claims: DeadLetterClaims
    ) -> None:
        self.queue = queue
        self.jobs = jobs
        self.states = states
        self.claims = claims

    def get(self, dead_letter_id: str, wanted: str = "") -> DeadLetter:
        """The dead letter; if it is gone because an action took it, say which."""
        try:
            return self.queue.get_dead_letter(dead_letter_id)
        except MessageNotFound:
            refusal = self.claims.refusal(dead_letter_id, wanted)
            if refusal is not None:
                raise refusal from None
            raise

    def resubmit(self, dead_letter_id: str) -> DeadLetter:
        """Put the dead letter back on the queue, its failed job back to ``queued`` first (so
        the replayed message never finds it failed), and queue the job's other unfinished
        parts."""
        letter = self.get(dead_letter_id, RESUBMIT)
        message = job_of(letter)
        job = self._job(message)
        claim = self.claims.take(dead_letter_id, RESUBMIT, job.job_id if job else None)
        requeued = False
        try:
            requeued = job is not None and self.states.requeue(job.job_id)
            self.queue.resubmit_dead_letter(dead_letter_id)
        except BaseException:
            if requeued and job is not None:
                self.states.fail(job.job_id, job.error or "the resubmit did not complete")
            self.claims.give_up(claim)
            raise
        self.claims.finish(claim)
        if requeued and message is not None:
            others = [
                JobMessage(message.job_id, n).later_send(None, "replay")
                for n in self.jobs.pending_parts(message.job_id)
                if n != message.part
            ]
            # Should this send fail, the reconciliation finds those parts without a message.
            self.queue.send(others)
        log.info("dead letter resubmitted", dead_letter_id=dead_letter_id, requeued=requeued)
        return letter

    def purge(self, dead_letter_id: str) -> DeadLetter:
        """Remove the dead letter for good; a job still waiting on it ends failed."""
        letter = self.get(dead_letter_id, PURGE)
        job = self._job(job_of(letter))
        claim = self.claims.take(dead_letter_id, PURGE, job.job_id if job else None)
        try:
            self.queue.purge_dead_letter(dead_letter_id)
        except BaseException:
            self.claims.give_up(claim)
            raise
        self.claims.finish(claim)
        if job is not None:
            self.states.fail(
                job.job_id, f"{letter.reason}: {letter.description} (dead letter purged)"
            )
        log.info("dead letter purged", dead_letter_id=dead_letter_id)
        return letter

    def _job(self, message: JobMessage | None) -> Job | None:
        if message is None:
            return None
        try:
            return self.jobs.get(message.job_id)
        except UnknownJob:
            return None
