"""The job catalog: jobs and their parts recorded, found, listed and deleted.

Counters live on the parts (see :mod:`common.stores.parts`) and are summed when a job is read,
so they always equal the rows committed. Methods taking ``conn`` join the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select, true, update

from common.errors import ConcurrentUpdate, JobNotFinished, UnknownJob
from common.model.jobs import UNFINISHED, Job, JobStatus, Part, PartPlan, PartStatus, dedup_key
from common.model.options import LoadOptions
from common.sql.db import Database, utcnow
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t
from common.sql.schema import job_rejections
from common.stores.job_rows import job_from_row, job_query, part_from_row

# Names per IN list: well under SQL Server's 2100 parameters per statement.
_NAMES_PER_QUERY = 1000


class JobStore:
    """The jobs and their parts."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
        options: LoadOptions | None = None,
        group_id: str | None = None,
        retry_of: str | None = None,
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
            "dedup_key": dedup_key(table, content_sha256, on_conflict, options)
            if reusable
            else None,
            "warnings": "\n".join(warnings) or None,
            "options": options.as_json() if options is not None and options.fingerprint() else None,
            "group_id": group_id,
            "retry_of": retry_of,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self._insert(job, parts)
        except ConcurrentUpdate:
            if not reusable:
                raise
            winner = self.find_reusable(table, content_sha256, on_conflict, options)
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

    def get(self, job_id: str) -> Job:
        with self.db.read() as conn:
            row = conn.execute(job_query().where(jobs_t.c.job_id == job_id)).first()
        if row is None:
            raise UnknownJob(f"no job with id {job_id!r}")
        return job_from_row(row)

    def find_reusable(
        self,
        table: str,
        content_sha256: str,
        on_conflict: str,
        options: LoadOptions | None = None,
    ) -> Job | None:
        """The job that loaded (or is loading) the same content into the same table the same
        way, unless it failed or was cancelled."""
        key = dedup_key(table, content_sha256, on_conflict, options)
        with self.db.read() as conn:
            row = conn.execute(job_query().where(jobs_t.c.dedup_key == key)).first()
        return None if row is None else job_from_row(row)

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
                job_query()
                .where(*filters)
                .order_by(jobs_t.c.seq.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            total = conn.execute(
                select(func.count()).select_from(jobs_t).where(*filters)
            ).scalar_one()
        return [job_from_row(r) for r in rows], int(total)

    def parts(self, job_id: str) -> list[Part]:
        with self.db.read() as conn:
            rows = conn.execute(
                select(parts_t).where(parts_t.c.job_id == job_id).order_by(parts_t.c.part_no)
            ).all()
        return [part_from_row(r) for r in rows]

    def line_ranges(self, job_id: str) -> list[PartPlan]:
        """The lines each part of the job went through, from its first line to the line it
        stopped before (all of it for a part that is done), as ``PartPlan(first, end, first)``."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(parts_t.c.first_line, parts_t.c.next_line)
                .where(parts_t.c.job_id == job_id)
                .order_by(parts_t.c.part_no)
            ).all()
        return [PartPlan(r.first_line, r.next_line, r.first_line) for r in rows]

    def retries_of(self, job_ids: Sequence[str]) -> dict[str, list[str]]:
        """The jobs that retry the rejected rows of each of ``job_ids``, oldest first."""
        query = select(jobs_t.c.retry_of, jobs_t.c.job_id).order_by(jobs_t.c.seq)
        with self.db.read() as conn:
            rows = conn.execute(query.where(jobs_t.c.retry_of.in_(job_ids))).all()
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.retry_of, []).append(row.job_id)
        return found

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
                        # files uploaded together publish together: none waits for another
                        or_(jobs_t.c.group_id.is_(None), jobs_t.c.group_id != job.group_id)
                        if job.group_id is not None
                        else true(),
                    )
                    .order_by(jobs_t.c.seq)
                ).scalars()
            )

    def group_of(self, job: Job) -> list[Job]:
        """The jobs uploaded together with ``job`` to publish together (just ``job`` alone when
        it was uploaded on its own), as they are now."""
        if job.group_id is None:
            return [self.get(job.job_id)]
        with self.db.read() as conn:
            rows = conn.execute(job_query().where(jobs_t.c.group_id == job.group_id)).all()
        return [job_from_row(r) for r in rows]

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
