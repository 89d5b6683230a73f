"""Dead-letter claims: one operator action per dead letter.

The first resubmit or purge of a dead letter inserts its claim and acts; any other request for
it, at the same time or later, is refused. A claim left ``started`` by a request that died may
be taken over after :data:`STALE_CLAIM_SECONDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update

from common.errors import ConcurrentUpdate, DeadLetterTaken, MessageNotFound
from common.sql.db import Database, utcnow
from common.sql.schema import dead_letter_claims as claims_t

STALE_CLAIM_SECONDS = 300.0
RESUBMIT = "resubmit"
PURGE = "purge"
_PAST = {RESUBMIT: "resubmitted", PURGE: "purged"}
_ONGOING = {RESUBMIT: "being resubmitted", PURGE: "being purged"}


@dataclass(frozen=True)
class Claim:
    dead_letter_id: str
    action: str


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
