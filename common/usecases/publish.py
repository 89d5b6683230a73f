"""Publish a staged load: every valid row of its files appears in one transaction, or none.

Once every part of a staged job (and of every job uploaded with it, for ``POST
/uploads?atomic=true``) is staged, one transaction publishes them, parents first. A job whose
staged rows fall short of what its parts staged (a PostgreSQL server that stops abruptly
empties the ``UNLOGGED`` staging tables) is not published in part: it is staged again from its
start (:func:`common.stores.staging.restage`). Then it:

1. re-checks the staged rows against the tables as they are now: a later line of an id staged
   earlier is a duplicate; an id the table holds (unless the job updates) and a reference to
   an id its parent lacks are rejected as a plain load would. These rejections are stored with
   the ones found while staging;
2. judges the bad-row thresholds on the final count (``too_many_bad_records``), and the write
   mode: ``empty`` needs an empty table (``table_not_empty``), ``replace`` may not remove ids
   that rows of other tables reference (``referenced_rows_missing``);
3. writes: the staged rows not rejected go in (``replace`` first empties the table;
   ``on_conflict=update`` first deletes the rows they replace), the jobs succeed.

Step 1 is optimistic: a file's ids are nearly always new and unique and its references found,
so the rows whose parents are there are written at once, in a savepoint, and the table's own
key finds a repeated or taken id; fewer rows written than staged means a reference is missing
(or a staged row). Only then are the savepoint's writes undone, the staged rows counted, and
every check run before writing again; a refusal in step 2 does the same, so that the
rejections stored are all there are. The staged rows are dropped after the transaction (the
sweep of :mod:`retention` drops what a crash in between leaves).

A failure in 2 fails every job of the group and publishes nothing; its rejections are kept. A
dry run stops after 1. A crash anywhere rolls the transaction back: the next delivery of the
job's message publishes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import Connection, case, exists, func, select, update
from sqlalchemy.exc import IntegrityError

from common.errors import IngestError, TableBusy
from common.model.catalog import TableSpec, children_of, load_order, table_spec
from common.model.jobs import UNFINISHED, Job, JobStatus, PartStatus
from common.model.options import WriteMode
from common.sql.catalog_tables import data_table
from common.sql.db import Database, utcnow
from common.sql.loader import ON_CONFLICT_UPDATE
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t
from common.stores.gates import TableGates
from common.stores.job_states import JobStates
from common.stores.jobs import JobStore
from common.stores.staged_counts import complete
from common.stores.staged_rows import (
    dangling_if_replaced,
    reject_at_publish,
    staged_count,
    write_staged,
)
from common.stores.staging import analyze, discard, restage

log = structlog.get_logger("ingest.publish")


@dataclass(frozen=True)
class Outcome:
    """What publishing came to: ``waiting`` for other files of the group, ``busy`` while the
    tables cannot be taken, else done (published, failed, or already done by another)."""

    note: str
    waiting: bool = False
    busy: bool = False


class _Refused(Exception):
    def __init__(self, code: str, why: str) -> None:
        super().__init__(f"{code}: {why}")
        self.code = code
        self.rejected = 0  # the rows the checks at publish rejected


class _Unreferenced(Exception):
    """Rows refer to parent ids that are not there."""


class _Lost(Exception):
    def __init__(self, job: Job) -> None:
        super().__init__(f"staged rows of {job.job_id} are missing")
        self.job = job


class Publisher:
    """Publishes staged jobs, one group in one transaction."""

    def __init__(self, db: Database, jobs: JobStore, states: JobStates) -> None:
        self.db = db
        self.jobs = jobs
        self.states = states
        self.gates = TableGates(db)

    def publish(self, job: Job) -> Outcome:
        """Publish ``job``'s group if all of it is staged; if a job of the group ended without
        publishing (failed early, cancelled), end the others as failed."""
        group = self.jobs.group_of(job)
        if ended := [j for j in group if j.status.terminal and not j.published]:
            for other in group:
                if not other.status.terminal:
                    self.states.fail(
                        other.job_id,
                        f"upload_failed: the {ended[0].table} file of the same upload "
                        f"{ended[0].status.value}; nothing of the upload was published",
                    )
            return Outcome(f"job {ended[0].status.value} before its upload was published")
        if any(j.status.terminal for j in group):
            return Outcome(f"job already {job.status.value} with its group")
        if not all(j.parts_done == j.parts for j in group):
            return Outcome("staged; the other files of the upload are still staging", waiting=True)
        group = sorted(group, key=lambda j: load_order().index(j.table))
        tables = {j.table for j in group}
        gated = sorted(tables | {p for t in tables for p in table_spec(t).parents})
        rewrites = [j.table for j in group if j.options.write is not WriteMode.APPEND]
        if rewrites and (running := self._others_running(rewrites, group)):
            return Outcome(f"waiting for loads of the table to finish: {running}", busy=True)
        try:
            with self.db.write() as conn:
                analyze(conn, tables)
            with self.db.write() as conn:
                if not self._claim(conn, group):
                    return Outcome("published by another delivery")
                if self.gates.hold(conn, gated) is not None:
                    raise TableBusy("a restore of the tables is in progress")
                if rewrites:
                    self.gates.take(conn, _disturbed(rewrites))
                    if running := self._others_running(rewrites, group, conn):
                        raise TableBusy(f"loads of the table are running: {running}")
                staged = self._staged(conn, group)
                if isinstance(staged, Outcome):
                    return staged
                try:
                    with conn.begin_nested():
                        self._publish(conn, group, staged)
                except _Lost as exc:
                    return _restage(conn, [exc.job])
        except TableBusy as exc:
            return Outcome(str(exc), busy=True)
        self._discard_staged(group)
        return Outcome("published")

    def _discard_staged(self, group: Sequence[Job]) -> None:
        """Drop the group's staged rows, now that its jobs are over: after the publishing
        transaction, which need not wait for it. Rows a crash leaves behind are swept."""
        try:
            with self.db.write() as conn:
                for job in group:
                    discard(conn, job.seq)
        except IngestError as exc:
            log.warning("staged rows left for the sweep", error=str(exc))

    def _others_running(
        self, tables: Sequence[str], group: Sequence[Job], conn: Connection | None = None
    ) -> list[str]:
        mine = {j.job_id for j in group}
        return [j for j in self.jobs.running_on(_disturbed(tables), conn) if j not in mine]

    def _claim(self, conn: Connection, group: Sequence[Job]) -> bool:
        """Lock the group's job rows; whether every job is still waiting to be published."""
        ids = [j.job_id for j in group]
        locked = conn.execute(
            update(jobs_t)
            .where(
                jobs_t.c.job_id.in_(ids),
                jobs_t.c.status.in_(UNFINISHED),
                jobs_t.c.publish_inserted.is_(None),
            )
            .values(updated_at=utcnow())
        ).rowcount
        return locked == len(ids)

    def _staged(self, conn: Connection, group: Sequence[Job]) -> dict[str, int] | Outcome:
        """How many rows each job of the group staged; or why the group cannot be published as
        staged: a part is staging again, or a job lacks staged rows (then it is staged again
        from its start). A job's staged rows are counted only when its writing at once does not
        go through (:meth:`_checked_and_written`)."""
        lost, rows = [], {}
        for job in group:
            staging = case((parts_t.c.status != PartStatus.DONE.value, 1), else_=0)
            undone, staged = conn.execute(
                select(func.sum(staging), func.sum(parts_t.c.rows_inserted)).where(
                    parts_t.c.job_id == job.job_id
                )
            ).one()
            if undone:
                return Outcome("a file of the upload is being staged again", waiting=True)
            spec, staged = table_spec(job.table), int(staged or 0)
            rows[job.job_id] = staged
            if not complete(conn, spec, job.seq, staged):
                lost.append(job)
        return _restage(conn, lost) if lost else rows

    def _publish(self, conn: Connection, group: Sequence[Job], staged: dict[str, int]) -> None:
        refused: _Refused | None = None
        counts: dict[str, tuple[int, int, int]] = {}
        for job in group:
            try:
                rejected, written = self._checked_and_written(conn, job, staged[job.job_id])
            except _Refused as exc:
                refused = refused or exc
                rejected, written = exc.rejected, (0, 0)
            counts[job.job_id] = (*written, rejected)
        now = utcnow()
        for job in group:
            inserted, updated, rejected = counts[job.job_id]
            values: dict[str, object] = {
                "publish_inserted": inserted,
                "publish_updated": updated,
                "publish_rejected": rejected,
                "finished_at": now,
                "updated_at": now,
            }
            if refused is None:
                values |= {"status": JobStatus.SUCCEEDED.value, "error": None}
            else:
                values |= {"status": JobStatus.FAILED.value, "error": str(refused)}
                values |= {"dedup_key": None, "publish_inserted": 0, "publish_updated": 0}
            conn.execute(update(jobs_t).where(jobs_t.c.job_id == job.job_id).values(**values))
        log.info(
            "staged load published" if refused is None else "staged load refused",
            jobs=[j.job_id for j in group],
            error=str(refused) if refused else None,
        )

    def _checked_and_written(
        self, conn: Connection, job: Job, staged: int
    ) -> tuple[int, tuple[int, int]]:
        """Check the job's ``staged`` rows, judge, write; (rejected at publish, (inserted,
        updated)). Raises :class:`_Refused`."""
        spec = table_spec(job.table)
        if not job.options.dry_run:
            try:
                with conn.begin_nested():
                    self._judge(conn, spec, job, 0)
                    written = _write(conn, spec, job, checked=False, referenced=True)
                    if sum(written) != staged:
                        raise _Unreferenced()
                    return 0, written
            except (IntegrityError, _Refused, _Unreferenced):
                pass  # an id repeated or taken, a reference missing, or a refusal: check all
        if staged_count(conn, spec, job.seq) != staged:
            raise _Lost(job)
        taken = job.options.write is not WriteMode.REPLACE and job.on_conflict != ON_CONFLICT_UPDATE
        replace = job.options.write is WriteMode.REPLACE
        rejected = reject_at_publish(conn, spec, job.seq, taken, replace=replace)
        try:
            self._judge(conn, spec, job, rejected)
        except _Refused as exc:
            exc.rejected = rejected
            raise
        if job.options.dry_run:
            return rejected, (0, 0)
        return rejected, _write(conn, spec, job, checked=True, referenced=False)

    def _judge(self, conn: Connection, spec: TableSpec, job: Job, at_publish: int) -> None:
        totals = conn.execute(
            select(func.sum(parts_t.c.rows_read), func.sum(parts_t.c.rows_rejected)).where(
                parts_t.c.job_id == job.job_id
            )
        ).one()
        read, rejected = int(totals[0] or 0), int(totals[1] or 0) + at_publish
        if why := job.options.exceeded(read, rejected):
            raise _Refused("too_many_bad_records", why)
        if job.options.dry_run:
            return
        live = data_table(spec.name)
        write = job.options.write
        if write is WriteMode.EMPTY and conn.execute(select(exists().select_from(live))).scalar():
            raise _Refused(
                "table_not_empty",
                f"{spec.name} holds rows; write=empty loads only into an empty table",
            )
        if write is WriteMode.REPLACE and (dangling := dangling_if_replaced(conn, spec, job.seq)):
            raise _Refused(
                "referenced_rows_missing",
                f"replacing {spec.name} would leave {dangling}; nothing was changed",
            )


def _disturbed(tables: Sequence[str]) -> list[str]:
    return sorted({*tables, *(c for t in tables for c in children_of(t))})


def _restage(conn: Connection, lost: Sequence[Job]) -> Outcome:
    for job in lost:
        restage(conn, job.job_id, job.seq)
    log.warning("staged rows were lost; staging again", jobs=[j.job_id for j in lost])
    return Outcome("staged rows were lost (the database restarted?); staging again")


def _write(conn: Connection, spec: TableSpec, job: Job, **checks: bool) -> tuple[int, int]:
    replace, update = job.options.write is WriteMode.REPLACE, job.on_conflict == ON_CONFLICT_UPDATE
    return write_staged(conn, spec, job.seq, replace=replace, update=update, **checks)
