"""Part leases and checkpoints: exactly-once ingestion of each part.

Each part keeps a checkpoint (next byte offset, next line number, counters) that advances in the
same transaction as the rows it accounts for. A part is worked on by the holder of its lease
only; the lease is renewed with every commit and by the worker's lock renewer, so a redelivered
or duplicated message never works on a part that is alive elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, func, select, update

from common.errors import JobCancelled, LeaseLost, UnknownJob
from common.model.jobs import UNFINISHED, Busy, JobStatus, Part, PartStatus, Progress
from common.model.options import LoadOptions
from common.sql.db import Database, utcnow
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t
from common.stores.gates import TableGates
from common.stores.job_rows import part_from_row

# How often a job held back by a restore looks again.
RESTORE_POLL_SECONDS = 2.0


class PartLeases:
    """Leases on parts and the checkpoints their holders move."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def acquire(
        self,
        job_id: str,
        part_no: int,
        owner: str,
        lease_seconds: float,
        attempt: int,
        gated_tables: tuple[str, ...] = (),
    ) -> Part | Busy:
        """Take the part's lease. Returns the part, or :class:`Busy` while another holder's
        lease lasts or, for a job yet to start, while a restore of ``gated_tables`` runs."""
        now = utcnow()
        with self.db.write() as conn:
            row = conn.execute(
                select(parts_t).where(parts_t.c.job_id == job_id, parts_t.c.part_no == part_no)
            ).first()
            if row is None:
                raise UnknownJob(f"job {job_id!r} has no part {part_no}")
            if (
                row.status == PartStatus.PENDING.value
                and row.lease_owner not in (None, owner)
                and row.lease_until is not None
                and row.lease_until > now
            ):
                return Busy(row.lease_until, "another worker holds this part")
            if row.status == PartStatus.PENDING.value:
                status = conn.execute(
                    select(jobs_t.c.status).where(jobs_t.c.job_id == job_id)
                ).scalar_one()
                if status == JobStatus.QUEUED.value and gated_tables:
                    # A job starts only between restores of the tables it reads or writes.
                    restoring = TableGates(self.db).hold(conn, gated_tables)
                    if restoring is not None:
                        # The mark is a renewed lease, not the restore's end: look again soon.
                        return Busy(
                            min(restoring, now + timedelta(seconds=RESTORE_POLL_SECONDS)),
                            f"waiting for a restore of {', '.join(gated_tables)}",
                        )
                conn.execute(
                    update(parts_t)
                    .where(parts_t.c.job_id == job_id, parts_t.c.part_no == part_no)
                    .values(
                        lease_owner=owner,
                        lease_until=now + timedelta(seconds=lease_seconds),
                        updated_at=now,
                    )
                )
                conn.execute(
                    update(jobs_t)
                    .where(jobs_t.c.job_id == job_id)
                    .values(
                        status=JobStatus.RUNNING.value,
                        started_at=func.coalesce(jobs_t.c.started_at, now),
                        updated_at=now,
                    )
                    .where(jobs_t.c.status == JobStatus.QUEUED.value)
                )
                conn.execute(
                    update(jobs_t)
                    .where(jobs_t.c.job_id == job_id, jobs_t.c.attempts < attempt)
                    .values(attempts=attempt, updated_at=now)
                )
        return part_from_row(row)

    def renew(self, job_id: str, part_no: int, owner: str, lease_seconds: float) -> bool:
        """Extend the lease if ``owner`` still holds it."""
        now = utcnow()
        with self.db.write() as conn:
            return (
                conn.execute(
                    update(parts_t)
                    .where(_held_by(job_id, part_no, owner))
                    .values(lease_until=now + timedelta(seconds=lease_seconds))
                ).rowcount
                == 1
            )

    def release(self, job_id: str, part_no: int, owner: str) -> None:
        """Give the lease up so that the next delivery can start at once."""
        with self.db.write() as conn:
            conn.execute(
                update(parts_t)
                .where(_held_by(job_id, part_no, owner))
                .values(lease_owner=None, lease_until=None)
            )

    def advance(
        self,
        conn: Connection,
        part: Part,
        owner: str,
        expected_offset: int,
        progress: Progress,
        lease_seconds: float,
    ) -> bool:
        """Move the part's checkpoint, in the caller's transaction, if ``owner`` holds the lease
        and nobody moved it since ``expected_offset``. Returns whether the part is now done.
        Raises :class:`JobCancelled` or :class:`LeaseLost` otherwise, which rolls the batch
        back."""
        now = utcnow()
        done = progress.next_offset >= part.end_offset
        moved = conn.execute(
            update(parts_t)
            .where(
                _held_by(part.job_id, part.part_no, owner),
                parts_t.c.next_offset == expected_offset,
                parts_t.c.status == PartStatus.PENDING.value,
            )
            .values(
                next_offset=progress.next_offset,
                next_line=progress.next_line,
                rows_read=parts_t.c.rows_read + progress.rows_read,
                rows_inserted=parts_t.c.rows_inserted + progress.rows_inserted,
                rows_updated=parts_t.c.rows_updated + progress.rows_updated,
                rows_rejected=parts_t.c.rows_rejected + progress.rows_rejected,
                status=PartStatus.DONE.value if done else PartStatus.PENDING.value,
                lease_until=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
        ).rowcount
        if moved != 1:
            status = conn.execute(
                select(parts_t.c.status).where(
                    parts_t.c.job_id == part.job_id, parts_t.c.part_no == part.part_no
                )
            ).scalar()
            if status in (PartStatus.CANCELLED.value, PartStatus.FAILED.value):
                raise JobCancelled(f"job {part.job_id} ended ({status}) while its part ran")
            raise LeaseLost(
                f"part {part.part_no} of job {part.job_id} was taken over by another worker"
            )
        if done:
            self._finish_if_complete(conn, part.job_id, now)
        return done

    def _finish_if_complete(self, conn: Connection, job_id: str, now: datetime) -> None:
        # Locking the job row first serialises parts finishing at the same moment.
        conn.execute(update(jobs_t).where(jobs_t.c.job_id == job_id).values(updated_at=now))
        open_parts = conn.execute(
            select(func.count())
            .select_from(parts_t)
            .where(parts_t.c.job_id == job_id, parts_t.c.status != PartStatus.DONE.value)
        ).scalar_one()
        options = conn.execute(select(jobs_t.c.options).where(jobs_t.c.job_id == job_id)).scalar()
        # A staged load succeeds when it is published, not when its last part is staged.
        if open_parts == 0 and not LoadOptions.from_json(options).staged:
            conn.execute(
                update(jobs_t)
                .where(jobs_t.c.job_id == job_id, jobs_t.c.status.in_(UNFINISHED))
                .values(status=JobStatus.SUCCEEDED.value, finished_at=now, error=None)
            )


def _held_by(job_id: str, part_no: int, owner: str) -> ColumnElement[bool]:
    """The part's row, while ``owner`` holds its lease."""
    return and_(
        parts_t.c.job_id == job_id, parts_t.c.part_no == part_no, parts_t.c.lease_owner == owner
    )
