"""Sending a job's messages, once: the API sends them after recording the job; a worker's
reconciliation sends those of a job whose API died in between. ``sent_at`` says it happened
(or is happening); claiming it is a compare-and-set, so of several claimants one sends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from common.model.jobs import JobStatus
from common.sql.db import Database, utcnow
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t


class JobSends:
    """Who sends a job's messages."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claim(self, job_id: str) -> bool:
        """Note that the job's messages are (being) sent; whether this call was the one that
        did, so that of several claimants exactly one sends them."""
        with self.db.write() as conn:
            claimed = conn.execute(
                update(jobs_t)
                .where(jobs_t.c.job_id == job_id, jobs_t.c.sent_at.is_(None))
                .values(sent_at=utcnow())
            ).rowcount
        return claimed == 1

    def release(self, job_id: str) -> None:
        """Give a claim back after the messages could not be sent."""
        with self.db.write() as conn:
            conn.execute(update(jobs_t).where(jobs_t.c.job_id == job_id).values(sent_at=None))

    def delete_unsent(self, job_id: str) -> bool:
        """Remove a job whose messages could not be sent, unless a worker has since claimed
        and sent them; whether it was removed."""
        with self.db.write() as conn:
            unsent = conn.execute(
                select(jobs_t.c.job_id).where(jobs_t.c.job_id == job_id, jobs_t.c.sent_at.is_(None))
            ).first()
            if unsent is None:
                return False
            conn.execute(parts_t.delete().where(parts_t.c.job_id == job_id))
            conn.execute(jobs_t.delete().where(jobs_t.c.job_id == job_id))
        return True

    def unsent(self, created_before: datetime, limit: int = 100) -> list[str]:
        """Queued jobs created before ``created_before`` whose messages were never sent: the
        process that created them died before it could send them."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(jobs_t.c.job_id)
                    .where(
                        jobs_t.c.sent_at.is_(None),
                        jobs_t.c.status == JobStatus.QUEUED.value,
                        jobs_t.c.created_at < created_before,
                    )
                    .order_by(jobs_t.c.seq)
                    .limit(limit)
                ).scalars()
            )
