"""The workers' reconciliation, run on demand in tests with chosen timings."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from common.bootstrap import Services
from common.errors import MalformedMessage
from common.model.jobs import UNFINISHED, PartStatus
from common.model.messages import JobMessage
from common.sql.db import utcnow
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t
from common.usecases.reconcile import Reconciler, ReconcileTiming

OWNER = "test-reconciler"


def reconciler(services: Services, **timing: Any) -> Reconciler:
    """A reconciler with ``timing`` overrides (seconds), always the same owner, so that
    successive passes in one test are not kept off by each other's lease."""
    return Reconciler(
        services.db,
        services.jobs,
        services.sends,
        services.states,
        services.queue,
        OWNER,
        ReconcileTiming(**timing),
    )


def stranded_parts(services: Services) -> list[tuple[str, int]]:
    """Unfinished parts of unfinished jobs that have neither a message in the queue nor a live
    lease: what the invariant says must never last."""
    in_queue: set[tuple[str, int]] = set()
    for body in services.queue.peek_active():
        try:
            message = JobMessage.decode(body)
        except MalformedMessage:
            continue
        in_queue.add((message.job_id, message.part))
    now = utcnow()
    with services.db.read() as conn:
        rows = conn.execute(
            select(parts_t.c.job_id, parts_t.c.part_no)
            .select_from(parts_t.join(jobs_t, jobs_t.c.job_id == parts_t.c.job_id))
            .where(
                jobs_t.c.status.in_(UNFINISHED),
                parts_t.c.status == PartStatus.PENDING.value,
                or_(parts_t.c.lease_until.is_(None), parts_t.c.lease_until <= now),
            )
        ).all()
    return sorted((r.job_id, r.part_no) for r in rows if (r.job_id, r.part_no) not in in_queue)
