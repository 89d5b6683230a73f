"""Scheduled backups: on each time of ``BACKUP_SCHEDULE`` exactly one worker takes a run.

The workers share one row of the ``leases`` table. At a scheduled time every worker tries one
conditional UPDATE that only succeeds when that time has not been run yet and no live lease is
held; the one that succeeds takes the backups, keeps ``BACKUP_RETENTION`` per table, records
the time as run and lets the lease go. A worker that dies mid-run leaves its lease to expire;
another then takes the same run again (its backup ids follow from the time, so the files are
replaced, not doubled). The first worker ever to see a schedule records its latest time as
run, so starting a service never takes a backup at once; after an outage of every worker, the
latest missed time is run once.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from croniter import croniter
from sqlalchemy import insert, or_, select, update

from common.backup.records import BackupCatalog, BackupRecord
from common.backup.writer import take_backups
from common.errors import ConcurrentUpdate, IngestError
from common.model.catalog import load_order
from common.sql.db import Database, utcnow
from common.sql.schema import leases

log = structlog.get_logger("ingest.backup")

LEASE_NAME = "backup-schedule"
LEASE_SECONDS = 30 * 60.0
# How soon to look again while another worker holds the lease (it may die).
BUSY_RECHECK_SECONDS = 15.0


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"  # this scheduled time has been run (or was recorded as the first)
    BUSY = "busy"  # another worker holds a live lease on it


def previous_time(expression: str, now: datetime) -> datetime:
    """The latest time of the schedule at or before ``now`` (naive UTC)."""
    base = now.replace(tzinfo=None)
    itr = croniter(expression, base + timedelta(microseconds=1))
    previous: datetime = itr.get_prev(datetime)
    return previous


def run_id_for(at: datetime) -> str:
    """The run id of the scheduled run at ``at``: the same in every worker."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"ingest-backup-schedule:{at.isoformat()}").hex


def apply_retention(catalog: BackupCatalog, keep: int) -> list[BackupRecord]:
    """Delete all but the newest ``keep`` backups of each table; return those deleted."""
    deleted: list[BackupRecord] = []
    for table in load_order():
        for record in catalog.all(table)[keep:]:
            catalog.delete(record)
            deleted.append(record)
            log.info("backup deleted by retention", backup_id=record.backup_id, table=table)
    return deleted


class BackupScheduler:
    """One worker's side of the schedule; call :meth:`tick` often (every loop is fine)."""

    def __init__(
        self,
        db: Database,
        catalog: BackupCatalog,
        schedule: str,
        retention: int | None,
        owner: str,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.schedule = schedule
        self.retention = retention
        self.owner = owner[:36]
        self.lease_seconds = lease_seconds
        self._settled: datetime | None = None  # the latest time known to be done
        self._recheck_at = 0.0

    def tick(self, now: datetime | None = None) -> list[BackupRecord]:
        """Take the run due at ``now`` if this worker wins it; return the backups taken."""
        now = (now or utcnow()).replace(tzinfo=None)
        due = previous_time(self.schedule, now)
        if self._settled is not None and due <= self._settled:
            return []
        if time.monotonic() < self._recheck_at:
            return []
        claim = self.claim(due, now)
        if claim is Claim.BUSY:
            self._recheck_at = time.monotonic() + BUSY_RECHECK_SECONDS
            return []
        if claim is Claim.DONE:
            self._settled = due
            return []
        try:
            records = take_backups(self.db, self.catalog, run_id=run_id_for(due))
            if self.retention is not None:
                apply_retention(self.catalog, self.retention)
        except BaseException:
            self._release(due, done=False)
            raise
        self._release(due, done=True)
        self._settled = due
        log.info("scheduled backup run done", run_id=records[0].run_id if records else None)
        return records

    def tick_quietly(self) -> None:
        """:meth:`tick` for the worker loop: a failure is logged, the next tick tries again."""
        try:
            self.tick()
        except IngestError as exc:
            log.warning("scheduled backup failed", error=str(exc))
            self._recheck_at = time.monotonic() + BUSY_RECHECK_SECONDS
        except Exception as exc:  # a bug here must not stop the worker from ingesting
            log.error("scheduled backup failed", exc_info=exc)
            self._recheck_at = time.monotonic() + BUSY_RECHECK_SECONDS

    def claim(self, due: datetime, now: datetime) -> Claim:
        """Try to take the lease for the run at ``due``."""
        lease = leases.c
        try:
            with self.db.write() as conn:
                row = conn.execute(select(lease.last_run).where(lease.name == LEASE_NAME)).first()
                if row is None:
                    # The first worker ever to see a schedule starts it from now.
                    conn.execute(insert(leases).values(name=LEASE_NAME, last_run=due))
                    return Claim.DONE
                taken = conn.execute(
                    update(leases)
                    .where(
                        lease.name == LEASE_NAME,
                        or_(lease.last_run.is_(None), lease.last_run < due),
                        or_(lease.until.is_(None), lease.until < now, lease.owner == self.owner),
                    )
                    .values(owner=self.owner, until=now + timedelta(seconds=self.lease_seconds))
                ).rowcount
        except ConcurrentUpdate:
            return Claim.BUSY  # another worker inserted the row first
        if taken:
            log.info("scheduled backup run claimed", at=due.isoformat(), owner=self.owner)
            return Claim.CLAIMED
        return Claim.DONE if row[0] is not None and row[0] >= due else Claim.BUSY

    def _release(self, due: datetime, *, done: bool) -> None:
        values: dict[str, object] = {"owner": None, "until": None}
        if done:
            values["last_run"] = due
        try:
            with self.db.write() as conn:
                conn.execute(
                    update(leases)
                    .where(leases.c.name == LEASE_NAME, leases.c.owner == self.owner)
                    .values(**values)
                )
        except IngestError as exc:  # the lease then simply expires
            log.warning("could not release the backup lease", error=str(exc))
