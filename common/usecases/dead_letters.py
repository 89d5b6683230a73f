"""Replay or purge a dead letter, one operator action per dead letter.

Resubmit and purge of the same dead letter exclude each other: the first to insert the dead
letter's claim acts, and any other request for it, at the same time or later, is refused with
:class:`DeadLetterTaken`. A claim left ``started`` by a request that died is taken over after
:data:`STALE_CLAIM_SECONDS`; until then the job's state is kept consistent by the workers'
reconciliation (see :mod:`common.usecases.reconcile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Row, insert, select, update

from common.db import Database, utcnow
from common.errors import (
    ConcurrentUpdate,
    IngestError,
    MalformedMessage,
    MessageNotFound,
    UnknownJob,
)
from common.jobs import Job, JobStore
from common.messages import JobMessage
from common.queue import DeadLetter, JobQueue
from common.schema import dead_letter_claims as claims_t

log = structlog.get_logger("ingest.dead_letters")

STALE_CLAIM_SECONDS = 300.0
RESUBMIT = "resubmit"
PURGE = "purge"
_PAST = {RESUBMIT: "resubmitted", PURGE: "purged"}
_ONGOING = {RESUBMIT: "being resubmitted", PURGE: "being purged"}


class DeadLetterTaken(IngestError):
    """Another request resubmits or purges this dead letter, or already did."""

    reason = "DeadLetterTaken"


@dataclass(frozen=True)
class Claim:
    dead_letter_id: str
    action: str


def job_of(letter: DeadLetter) -> JobMessage | None:
    """The job message a dead letter carries, or ``None`` for a body that is not one."""
    try:
        return JobMessage.decode(letter.body)
    except MalformedMessage:
        return None


class DeadLetterClaims:
    """The ``dead_letter_claims`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take(self, dead_letter_id: str, action: str, job_id: str | None) -> Claim:
        """Claim the dead letter for ``action``; raise :class:`DeadLetterTaken` if another
        live or finished action holds it."""
        now = utcnow()
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(claims_t).values(
                        dead_letter_id=dead_letter_id,
                        action=action,
                        job_id=job_id,
                        state="started",
                        claimed_at=now,
                    )
                )
            return Claim(dead_letter_id, action)
        except ConcurrentUpdate:
            pass
        stale = now - timedelta(seconds=STALE_CLAIM_SECONDS)
        with self.db.write() as conn:
            taken_over = conn.execute(
                update(claims_t)
                .where(
                    claims_t.c.dead_letter_id == dead_letter_id,
                    claims_t.c.state == "started",
                    claims_t.c.claimed_at < stale,
                )
                .values(action=action, job_id=job_id, claimed_at=now)
            ).rowcount
            if taken_over:
                return Claim(dead_letter_id, action)
            row = conn.execute(
                select(claims_t.c.action, claims_t.c.state, claims_t.c.claimed_at).where(
                    claims_t.c.dead_letter_id == dead_letter_id
                )
            ).first()
        raise _taken(dead_letter_id, row, action)

    def finish(self, claim: Claim) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(claims_t)
                .where(claims_t.c.dead_letter_id == claim.dead_letter_id)
                .values(state="done", claimed_at=utcnow())
            )

    def give_up(self, claim: Claim) -> None:
        """Drop a claim whose action did not happen, so it can be asked for again."""
        with self.db.write() as conn:
            conn.execute(
                claims_t.delete().where(
                    claims_t.c.dead_letter_id == claim.dead_letter_id,
                    claims_t.c.state == "started",
                )
            )

    def refusal(self, dead_letter_id: str, wanted: str) -> DeadLetterTaken | MessageNotFound | None:
        """Why ``wanted`` cannot be done to a dead letter that is gone, if an action took it."""
        with self.db.read() as conn:
            row = conn.execute(
                select(claims_t.c.action, claims_t.c.state, claims_t.c.claimed_at).where(
                    claims_t.c.dead_letter_id == dead_letter_id
                )
            ).first()
        return None if row is None else _taken(dead_letter_id, row, wanted)


def _taken(
    dead_letter_id: str, row: Row[Any, Any, Any] | None, wanted: str
) -> DeadLetterTaken | MessageNotFound:
    """The refusal for ``wanted`` when ``row`` holds the claim: the same action done before
    means the dead letter is simply gone; anything else conflicts."""
    if row is None:  # deleted between the two statements: an action gave up just now
        return DeadLetterTaken(f"dead letter {dead_letter_id} is being acted on; try again")
    action: str = row.action
    if row.state == "done":
        at: datetime = row.claimed_at
        done = f"was already {_PAST[action]} at {at:%Y-%m-%d %H:%M:%S} UTC"
        if wanted in (action, ""):  # the same action again, or merely a look at it
            return MessageNotFound(f"no dead letter with id {dead_letter_id!r}: it {done}")
        return DeadLetterTaken(f"dead letter {dead_letter_id} {done}")
    return DeadLetterTaken(f"dead letter {dead_letter_id} is {_ONGOING[action]} by another request")


class DeadLetters:
    """The operator's actions on dead letters."""

    def __init__(self, queue: JobQueue, jobs: JobStore, claims: DeadLetterClaims) -> None:
        self.queue = queue
        self.jobs = jobs
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
            requeued = job is not None and self.jobs.requeue(job.job_id)
            self.queue.resubmit_dead_letter(dead_letter_id)
        except BaseException:
            if requeued and job is not None:
                self.jobs.mark_failed(job.job_id, job.error or "the resubmit did not complete")
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
            self.jobs.mark_failed(
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
