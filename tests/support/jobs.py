"""Jobs written straight into a service's database: queued with no message behind them (so
no worker takes them first), or failed, for tests about finding and acting on jobs."""

from __future__ import annotations

from pathlib import Path

from common.model.jobs import PartPlan
from common.sql.db import Database
from common.stores.job_states import JobStates
from common.stores.jobs import JobStore


def record_job(store: JobStore, job_id: str, table: str = "departments", size: int = 1) -> None:
    """A queued job of one part, its content hash made from its id."""
    store.create(
        job_id=job_id,
        table=table,
        content_sha256=job_id.replace("-", "").ljust(64, "0"),
        size_bytes=size,
        original_name=f"{table}.csv",
        blob_name=f"{table}/{job_id}.csv",
        on_conflict="reject",
        parts=[PartPlan(0, size, 1)],
    )


def record_jobs_in(
    folder: Path, job_ids: list[str], table: str = "departments", *, failed: bool = False
) -> None:
    """Jobs in the SQLite database of a service started in ``folder`` (see processes.py)."""
    db = Database.from_url(f"sqlite:///{folder / 'data' / 'ingest.db'}")
    try:
        store = JobStore(db)
        for job_id in job_ids:
            record_job(store, job_id, table)
            if failed:
                JobStates(db, store).fail(job_id, "made by the test")
    finally:
        db.dispose()
