"""Forget finished jobs and the files nobody needs: on request, after ``JOB_RETENTION_DAYS``,
uploads that no job ever came to own, and staged rows of jobs that are over.

Deleting a job removes its record, its parts, its rejected rows and its uploaded file; the
rows it loaded stay in their table. The database goes first: a file left behind by a failure
in between is no job's file any more, and the sweep removes it like any other such file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from common.errors import IngestError
from common.model.jobs import Job
from common.sql.db import Database, utcnow
from common.stores.jobs import JobStore
from common.stores.named_leases import try_lease
from common.stores.staging import sweep_finished
from common.stores.uploads import UploadFiles

log = structlog.get_logger("ingest.retention")

LEASE_NAME = "retention"
# The metadata key an upload's blob carries with the time it was stored.
UPLOADED_AT = "uploaded_at"
_JOBS_PER_PASS = 200


@dataclass(frozen=True)
class RetentionPolicy:
    job_days: float | None = None
    orphan_after_seconds: float = 3600.0
    every_seconds: float = 600.0


@dataclass
class Removed:
    """What one pass removed, for the log and for tests."""

    jobs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    staged_rows: int = 0


def delete_job(jobs: JobStore, uploads: UploadFiles, job_id: str) -> Job:
    """Remove a finished job, its rejected rows and its file; its loaded rows stay."""
    job = jobs.delete(job_id)
    if job.blob_name:  # a retry of rejected rows has no file of its own
        uploads.delete(job.blob_name)
    log.info("job deleted", job_id=job_id, table=job.table)
    return job


def _uploaded_at(metadata: dict[str, str]) -> datetime | None:
    try:
        return datetime.fromisoformat(metadata[UPLOADED_AT])
    except (KeyError, ValueError):
        return None


class Retention:
    """Runs the removals above from a worker, one worker at a time (the ``retention`` lease)."""

    def __init__(
        self,
        db: Database,
        jobs: JobStore,
        uploads: UploadFiles,
        owner: str,
        policy: RetentionPolicy | None = None,
    ) -> None:
        self.db, self.jobs, self.uploads = db, jobs, uploads
        self.owner = owner
        self.policy = policy or RetentionPolicy()
        self._last = float("-inf")

    def run_if_due(self) -> None:
        if time.monotonic() - self._last < self.policy.every_seconds:
            return
        self._last = time.monotonic()
        try:
            self.run()
        except IngestError as exc:
            log.warning("retention pass failed; it runs again later", error=str(exc))

    def run(self) -> Removed:
        removed = Removed()
        if not try_lease(self.db, LEASE_NAME, self.owner, self.policy.every_seconds):
            return removed
        if self.policy.job_days is not None:
            before = utcnow() - timedelta(days=self.policy.job_days)
            for job_id in self.jobs.finished_before(before, _JOBS_PER_PASS):
                delete_job(self.jobs, self.uploads, job_id)
                removed.jobs.append(job_id)
        self._sweep(removed)
        with self.db.write() as conn:
            removed.staged_rows = sweep_finished(conn)
        return removed

    def _sweep(self, removed: Removed) -> None:
        """Delete uploads that no job owns, once they are old enough that the request that
        stored them can no longer be about to record their job."""
        old = utcnow() - timedelta(seconds=self.policy.orphan_after_seconds)
        candidates = {}
        for info in self.uploads.all():
            stored = _uploaded_at(dict(info.metadata))
            if stored is None or stored < old:
                candidates[info.name] = info
        owned = self.jobs.owned_blobs(list(candidates))
        for name in sorted(set(candidates) - owned):
            self.uploads.delete(name)
            removed.files.append(name)
            log.info("file no job owns deleted", blob=name)
