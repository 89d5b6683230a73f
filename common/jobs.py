"""Jobs and their parts: creation, status, counters, leases and checkpoints.

A job is one uploaded file; a part is a byte range of it, cut at a newline, that one worker
ingests. Each part keeps a checkpoint (next byte offset, next line number, counters) that
advances in the same transaction as the rows it accounts for. A part is worked on by the holder
of its lease only; the lease is renewed with every commit and by the worker's lock renewer, so
a redelivered or duplicated message never works on a part that is alive elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, case, func, or_, select, update

from common.db import Database, utcnow
from common.errors import (
    ConcurrentUpdate,
    JobCancelled,
    JobFinished,
    JobNotFinished,
    LeaseLost,
    UnknownJob,
)
from common.gates import TableGates
from common.schema import ingest_jobs as jobs_t
from common.schema import job_parts as parts_t
from common.schema import job_rejections


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the job is over: nothing of it will run again unless it is replayed."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
# Names per IN list: well under SQL Server's 2100 parameters per statement.
_NAMES_PER_QUERY = 1000
# How often a job held back by a restore looks again.
RESTORE_POLL_SECONDS = 2.0


class PartStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PartPlan:
    """A byte range ``[start, end)`` of the file whose first line is line ``first_line``."""

    start: int
    end: int
    first_line: int


@dataclass(frozen=True)
class Job:
    job_id: str
    seq: int
    table: str
    status: JobStatus
    content_sha256: str
    size_bytes: int
    original_name: str | None
    blob_name: str
    on_conflict: str
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    parts: int
    parts_done: int
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_rejected: int
    bytes_done: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Part:
    job_id: str
    part_no: int
    start_offset: int
    end_offset: int
    next_offset: int
    next_line: int
    status: PartStatus


@dataclass(frozen=True)
class Progress:
    """What one committed batch adds to its part."""

    next_offset: int
    next_line: int
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_rejected: int


@dataclass(frozen=True)
class Busy:
    """The part cannot be taken now; try again at ``until``."""

    until: datetime
    why: str


def dedup_key(table: str, content_sha256: str, on_conflict: str) -> str:
    """What makes two uploads the same load: the table, the bytes and the conflict rule."""
    return f"{table}:{content_sha256}:{on_conflict}"


_part_totals = (
    select(
        parts_t.c.job_id.label("p_job_id"),
        func.count().label("parts"),
        func.sum(case((parts_t.c.status == PartStatus.DONE.value, 1), else_=0)).label("parts_done"),
        func.sum(parts_t.c.rows_read).label("rows_read"),
        func.sum(parts_t.c.rows_inserted).label("rows_inserted"),
        func.sum(parts_t.c.rows_updated).label("rows_updated"),
        func.sum(parts_t.c.rows_rejected).label("rows_rejected"),
        func.sum(parts_t.c.next_offset - parts_t.c.start_offset).label("bytes_done"),
    )
    .group_by(parts_t.c.job_id)
    .subquery()
)


def _job_query() -> Any:
    return select(jobs_t, _part_totals).join(
        _part_totals, _part_totals.c.p_job_id == jobs_t.c.job_id, isouter=True
    )


def _job_from_row(row: Any) -> Job:
    m = row._mapping
    return Job(
        job_id=m["job_id"],
        seq=m["seq"],
        table=m["table_name"],
        status=JobStatus(m["status"]),
        content_sha256=m["content_sha256"],
        size_bytes=m["size_bytes"],
        original_name=m["original_name"],
        blob_name=m["blob_name"],
        on_conflict=m["on_conflict"],
        attempts=m["attempts"],
        error=m["error"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
        parts=int(m["parts"] or 0),
        parts_done=int(m["parts_done"] or 0),
        rows_read=int(m["rows_read"] or 0),
        rows_inserted=int(m["rows_inserted"] or 0),
        rows_updated=int(m["rows_updated"] or 0),
        rows_rejected=int(m["rows_rejected"] or 0),
        bytes_done=int(m["bytes_done"] or 0),
        warnings=tuple(m["warnings"].splitlines()) if m["warnings"] else (),
    )


def _part_from_row(row: Any) -> Part:
    return Part(
        row.job_id,
        row.part_no,
        row.start_offset,
        row.end_offset,
        row.next_offset,
        row.next_line,
        PartStatus(row.status),
    )


class JobStore:
    """Reads and writes jobs and parts. Methods taking ``conn`` join the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- creation and queries -------------------------------------------------------------

    def create(
        self,
        *,
        job_id: str,
        table: str,
        content_sha256: str,
        size_bytes: int,
        original_name: str | None,
        blob_name: str,
        on_conflict: str,
        parts: list[PartPlan],
        reusable: bool = True,
        warnings: tuple[str, ...] = (),
    ) -> tuple[Job, bool]:
        """Record a queued job and its parts; return it and ``True``. With ``reusable``, an
        unfinished or succeeded job for the same content wins instead: that one and ``False``."""
        now = utcnow()
        job = {
            "job_id": job_id,
            "table_name": table,
            "status": JobStatus.QUEUED.value,
            "content_sha256": content_sha256,
            "size_bytes": size_bytes,
            "original_name": original_name,
            "blob_name": blob_name,
            "on_conflict": on_conflict,
            "dedup_key": dedup_key(table, content_sha256, on_conflict) if reusable else None,
            "warnings": "\n".join(warnings) or None,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self._insert(job, parts)
        except ConcurrentUpdate:
            if not reusable:
                raise
            winner = self.find_reusable(table, content_sha256, on_conflict)
            if winner is not None:
                return winner, False
            self._insert(job, parts)  # the winner failed in the meantime: try once more
        return self.get(job_id), True

    def _insert(self, job: dict[str, Any], parts: list[PartPlan]) -> None:
        now = job["created_at"]
        with self.db.write() as conn:
            conn.execute(jobs_t.insert().values(**job))
            conn.execute(
                parts_t.insert(),
                [
                    {
                        "job_id": job["job_id"],
                        "part_no": i,
                        "start_offset": p.start,
                        "end_offset": p.end,
                        "first_line": p.first_line,
                        "next_offset": p.start,
                        "next_line": p.first_line,
                        "rows_read": 0,
                        "rows_inserted": 0,
                        "rows_updated": 0,
                        "rows_rejected": 0,
                        "status": PartStatus.PENDING.value,
                        "updated_at": now,
                    }
                    for i, p in enumerate(parts)
                ],
            )

    def warn(self, conn: Connection, job_id: str, warning: str) -> None:
        """Add ``warning`` to the job, in the caller's transaction."""
        current = conn.execute(select(jobs_t.c.warnings).where(jobs_t.c.job_id == job_id)).scalar()
        lines = current.splitlines() if current else []
        if warning not in lines:
            conn.execute(
                update(jobs_t)
                .where(jobs_t.c.job_id == job_id)
                .values(warnings="\n".join([*lines, warning]))
            )

    def mark_dispatched(self, job_id: str) -> bool:
        """Note that the job's messages are (being) sent; whether this call was the one that
        did, so that of several claimants exactly one sends them."""
        with self.db.write() as conn:
            claimed = conn.execute(
                update(jobs_t)
                .where(jobs_t.c.job_id == job_id, jobs_t.c.dispatched_at.is_(None))
                .values(dispatched_at=utcnow())
            ).rowcount
        return claimed == 1

    def unmark_dispatched(self, job_id: str) -> None:
        """Give a claim back after the messages could not be sent."""
        with self.db.write() as conn:
            conn.execute(update(jobs_t).where(jobs_t.c.job_id == job_id).values(dispatched_at=None))

    def delete_undispatched(self, job_id: str) -> bool:
        """Remove a job whose messages could not be sent, unless a worker has since claimed
        and sent them; whether it was removed."""
        with self.db.write() as conn:
            unsent = conn.execute(
                select(jobs_t.c.job_id).where(
                    jobs_t.c.job_id == job_id, jobs_t.c.dispatched_at.is_(None)
                )
            ).first()
            if unsent is None:
                return False
            conn.execute(parts_t.delete().where(parts_t.c.job_id == job_id))
            conn.execute(jobs_t.delete().where(jobs_t.c.job_id == job_id))
        return True

    def undispatched(self, created_before: datetime, limit: int = 100) -> list[str]:
        """Queued jobs created before ``created_before`` whose messages were never sent: the
        process that created them died before it could send them."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(jobs_t.c.job_id)
                    .where(
                        jobs_t.c.dispatched_at.is_(None),
                        jobs_t.c.status == JobStatus.QUEUED.value,
                        jobs_t.c.created_at < created_before,
                    )
                    .order_by(jobs_t.c.seq)
                    .limit(limit)
                ).scalars()
            )

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
                    jobs_t.c.dispatched_at.is_not(None),
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

    def running_on(self, tables: Iterable[str], conn: Connection | None = None) -> list[str]:
        """Jobs of ``tables`` that have started and not finished, oldest first."""
        query = (
            select(jobs_t.c.job_id)
            .where(
                jobs_t.c.table_name.in_(sorted(set(tables))),
                jobs_t.c.status == JobStatus.RUNNING.value,
            )
            .order_by(jobs_t.c.seq)
        )
        if conn is not None:
            return list(conn.execute(query).scalars())
        with self.db.read() as own:
            return list(own.execute(query).scalars())

    def delete(self, job_id: str) -> Job:
        """Remove a finished job with its parts and rejected rows; return what it was. Raises
        :class:`JobNotFinished` for a job that may still write."""
        job = self.get(job_id)
        if not job.status.terminal:
            raise JobNotFinished(
                f"job {job_id} is {job.status.value}; cancel it first, then delete it"
            )
        with self.db.write() as conn:
            conn.execute(job_rejections.delete().where(job_rejections.c.job_seq == job.seq))
            conn.execute(parts_t.delete().where(parts_t.c.job_id == job_id))
            conn.execute(jobs_t.delete().where(jobs_t.c.job_id == job_id))
        return job

    def finished_before(self, moment: datetime, limit: int) -> list[str]:
        """Jobs that ended before ``moment``, oldest first."""
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(jobs_t.c.job_id)
                    .where(
                        jobs_t.c.status.not_in(UNFINISHED),
                        jobs_t.c.finished_at < moment,
                    )
                    .order_by(jobs_t.c.finished_at)
                    .limit(limit)
                ).scalars()
            )

    def owned_blobs(self, names: Sequence[str]) -> set[str]:
        """Which of the blob ``names`` belong to a job."""
        owned: set[str] = set()
        with self.db.read() as conn:
            for start in range(0, len(names), _NAMES_PER_QUERY):
                chunk = names[start : start + _NAMES_PER_QUERY]
                owned.update(
                    conn.execute(
                        select(jobs_t.c.blob_name).where(jobs_t.c.blob_name.in_(chunk))
                    ).scalars()
                )
        return owned

    def touch(self, job_id: str) -> None:
        """Note that something was done for the job now (its messages were sent again)."""
        with self.db.write() as conn:
            conn.execute(
                update(jobs_t).where(jobs_t.c.job_id == job_id).values(updated_at=utcnow())
            )

    def get(self, job_id: str) -> Job:
        with self.db.read() as conn:
            row = conn.execute(_job_query().where(jobs_t.c.job_id == job_id)).first()
        if row is None:
            raise UnknownJob(f"no job with id {job_id!r}")
        return _job_from_row(row)

    def find_reusable(self, table: str, content_sha256: str, on_conflict: str) -> Job | None:
        """The job that loaded (or is loading) the same content into the same table the same
        way, unless it failed or was cancelled."""
        key = dedup_key(table, content_sha256, on_conflict)
        with self.db.read() as conn:
            row = conn.execute(_job_query().where(jobs_t.c.dedup_key == key)).first()
        return None if row is None else _job_from_row(row)

    def page(
        self,
        limit: int,
        offset: int,
        status: str | None = None,
        table: str | None = None,
        id_prefix: str | None = None,
    ) -> tuple[list[Job], int]:
        filters = []
        if status:
            filters.append(jobs_t.c.status == status)
        if table:
            filters.append(jobs_t.c.table_name == table)
        if id_prefix:
            filters.append(jobs_t.c.job_id.startswith(id_prefix, autoescape=True))
        with self.db.read() as conn:
            rows = conn.execute(
                _job_query()
                .where(*filters)
                .order_by(jobs_t.c.seq.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            total = conn.execute(
                select(func.count()).select_from(jobs_t).where(*filters)
            ).scalar_one()
        return [_job_from_row(r) for r in rows], int(total)

    def parts(self, job_id: str) -> list[Part]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(parts_t).where(parts_t.c.job_id == job_id).order_by(parts_t.c.part_no)
            ).all()
        return [_part_from_row(r) for r in rows]

    def pending_parts(self, job_id: str) -> list[int]:
        """The numbers of the job's parts not yet done, the ones a replay must queue."""
        return [p.part_no for p in self.parts(job_id) if p.status is PartStatus.PENDING]

    def waiting_for(self, job: Job, parent_tables: tuple[str, ...]) -> list[str]:
        """Unfinished uploads of ``parent_tables`` submitted before ``job``: its rows may
        reference ids they bring, so it waits for them."""
        if not parent_tables or job.status.terminal:
            return []
        with self.db.read() as conn:
            return list(
                conn.execute(
                    select(jobs_t.c.job_id)
                    .where(
                        jobs_t.c.seq < job.seq,
                        jobs_t.c.table_name.in_(parent_tables),
                        jobs_t.c.status.in_(UNFINISHED),
                    )
                    .order_by(jobs_t.c.seq)
                ).scalars()
            )

    # --- leases and checkpoints -----------------------------------------------------------

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
        return _part_from_row(row)

    def renew(self, job_id: str, part_no: int, owner: str, lease_seconds: float) -> bool:
        """Extend the lease if ``owner`` still holds it."""
        now = utcnow()
        with self.db.write() as conn:
            return (
                conn.execute(
                    update(parts_t)
                    .where(
                        parts_t.c.job_id == job_id,
                        parts_t.c.part_no == part_no,
                        parts_t.c.lease_owner == owner,
                    )
                    .values(lease_until=now + timedelta(seconds=lease_seconds))
                ).rowcount
                == 1
            )

    def release(self, job_id: str, part_no: int, owner: str) -> None:
        """Give the lease up so that the next delivery can start at once."""
        with self.db.write() as conn:
            conn.execute(
                update(parts_t)
                .where(
                    parts_t.c.job_id == job_id,
                    parts_t.c.part_no == part_no,
                    parts_t.c.lease_owner == owner,
                )
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
                parts_t.c.job_id == part.job_id,
                parts_t.c.part_no == part.part_no,
                parts_t.c.lease_owner == owner,
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
            if status == PartStatus.CANCELLED.value:
                raise JobCancelled(f"job {part.job_id} was cancelled")
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
        if open_parts == 0:
            conn.execute(
                update(jobs_t)
                .where(jobs_t.c.job_id == job_id, jobs_t.c.status.in_(UNFINISHED))
                .values(status=JobStatus.SUCCEEDED.value, finished_at=now, error=None)
            )

    # --- ending and replaying jobs --------------------------------------------------------

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

    def mark_failed(self, job_id: str, error: str) -> None:
        """End the job as failed with ``error`` unless it already ended."""
        with self.db.write() as conn:
            self._end(conn, job_id, JobStatus.FAILED, error)

    def cancel(self, job_id: str, reason: str) -> Job:
        """End an unfinished job as cancelled. Committed rows stay; a worker in the middle of a
        part stops at its next block. Raises :class:`JobFinished` for a job already over."""
        with self.db.write() as conn:
            ended = self._end(conn, job_id, JobStatus.CANCELLED, reason)
        job = self.get(job_id)
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
