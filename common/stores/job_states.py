"""How jobs end and start again: failed, cancelled, requeued for a replay; and the parts and
staged jobs that nothing is working on, for the reconciliation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, or_, select, update

from common.errors import JobFinished
from common.model.jobs import UNFINISHED, Job, JobStatus, PartStatus
from common.model.options import LoadOptions
from common.sql.db import Database, utcnow
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t
from common.stores.jobs import JobStore
from common.stores.staging import discard


class JobStates:
    """Ends and replays of jobs."""

    def __init__(self, db: Database, jobs: JobStore) -> None:
        self.db = db
        self.jobs = jobs

    def _end(self, conn: Connection, job_id: str, status: JobStatus, error: str) -> int:
        """End the unfinished job ``job_id`` as ``status``; whether it was unfinished."""
        now = utcnow()
        ended = conn.execute(
            update(jobs_t)
            .where(jobs_t.c.job_id == job_id, jobs_t.c.status.in_(UNFINISHED))
            .values(
                status=status.value, error=error, finished_at=now, updated_at=now, dedup_key=None
            )
        ).rowcount
        if ended:
            seq = conn.execute(select(jobs_t.c.seq).where(jobs_t.c.job_id == job_id)).scalar_one()
            discard(conn, seq)  # a staged load's rows go with it
            part_status = (
                PartStatus.CANCELLED if status is JobStatus.CANCELLED else PartStatus.FAILED
            )
            conn.execute(
                update(parts_t)
                .where(parts_t.c.job_id == job_id, parts_t.c.status == PartStatus.PENDING.value)
                .values(
                    status=part_status.value, lease_owner=None, lease_until=None, updated_at=now
                )
            )
        return int(ended)

    def fail(self, job_id: str, error: str) -> None:
        """End the job as failed with ``error`` unless it already ended."""
        with self.db.write() as conn:
            self._end(conn, job_id, JobStatus.FAILED, error)

    def cancel(self, job_id: str, reason: str) -> Job:
        """End an unfinished job as cancelled. Committed rows stay; a worker in the middle of a
        part stops at its next block. Raises :class:`JobFinished` for a job already over."""
        with self.db.write() as conn:
            ended = self._end(conn, job_id, JobStatus.CANCELLED, reason)
        job = self.jobs.get(job_id)
        if not ended and job.status is not JobStatus.CANCELLED:
            raise JobFinished(
                f"job {job_id} already {job.status.value}; only a queued or "
                "running job can be cancelled"
            )
        return job

    def requeue(self, job_id: str) -> bool:
        """Put a failed job back to ``queued``; its parts resume from their checkpoints.
        Whether the job was failed."""
        now = utcnow()
        with self.db.write() as conn:
            requeued = conn.execute(
                update(jobs_t)
                .where(jobs_t.c.job_id == job_id, jobs_t.c.status == JobStatus.FAILED.value)
                .values(status=JobStatus.QUEUED.value, error=None, finished_at=None, updated_at=now)
            ).rowcount
            if requeued:
                conn.execute(
                    update(parts_t)
                    .where(parts_t.c.job_id == job_id, parts_t.c.status == PartStatus.FAILED.value)
                    .values(status=PartStatus.PENDING.value, updated_at=now)
                )
        return bool(requeued)

    def stranded_candidates(self, quiet_since: datetime) -> dict[tuple[str, int], tuple[Any, ...]]:
        """Unfinished parts of sent jobs that nobody holds and nothing touched since
        ``quiet_since``, each with a stamp that changes whenever the part or its job does."""
        now = utcnow()
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    parts_t.c.job_id,
                    parts_t.c.part_no,
                    parts_t.c.updated_at,
                    parts_t.c.next_offset,
                    jobs_t.c.updated_at.label("job_updated_at"),
                    jobs_t.c.status,
                )
                .select_from(parts_t.join(jobs_t, jobs_t.c.job_id == parts_t.c.job_id))
                .where(
                    jobs_t.c.status.in_(UNFINISHED),
                    jobs_t.c.sent_at.is_not(None),
                    jobs_t.c.updated_at < quiet_since,
                    parts_t.c.status == PartStatus.PENDING.value,
                    parts_t.c.updated_at < quiet_since,
                    or_(parts_t.c.lease_until.is_(None), parts_t.c.lease_until < now),
                )
            ).all()
        return {
            (r.job_id, r.part_no): (r.updated_at, r.next_offset, r.job_updated_at, r.status)
            for r in rows
        }

    def unpublished_candidates(self, quiet_since: datetime) -> dict[str, tuple[Any, ...]]:
        """Unfinished staged jobs of sent uploads whose parts, and those of the jobs uploaded
        with them, are all staged, not published and untouched since ``quiet_since``, each with
        a stamp that changes whenever the job does."""
        other = jobs_t.alias("other")
        group = select(other.c.job_id).where(
            or_(
                other.c.job_id == jobs_t.c.job_id,
                and_(jobs_t.c.group_id.is_not(None), other.c.group_id == jobs_t.c.group_id),
            )
        )
        open_part = exists().where(
            parts_t.c.job_id.in_(group), parts_t.c.status == PartStatus.PENDING.value
        )
        with self.db.read() as conn:
            rows = conn.execute(
                select(
                    jobs_t.c.job_id, jobs_t.c.options, jobs_t.c.updated_at, jobs_t.c.status
                ).where(
                    jobs_t.c.status.in_(UNFINISHED),
                    jobs_t.c.sent_at.is_not(None),
                    jobs_t.c.updated_at < quiet_since,
                    jobs_t.c.options.is_not(None),
                    jobs_t.c.publish_inserted.is_(None),
                    ~open_part,
                )
            ).all()
        return {
            r.job_id: (r.updated_at, r.status)
            for r in rows
            if LoadOptions.from_json(r.options).staged
        }

    def touch(self, job_id: str) -> None:
        """Note that something was done for the job now (its messages were sent again)."""
        with self.db.write() as conn:
            conn.execute(
                update(jobs_t).where(jobs_t.c.job_id == job_id).values(updated_at=utcnow())
            )
