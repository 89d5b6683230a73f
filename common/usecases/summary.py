"""The reports' summary: check it against a recount, repair it, fold its changes into its base.

:mod:`common.stores.hire_counts` keeps the counts exact with every write; this module is what
an operator asks for (``POST /reports/verify``) and what one worker at a time does every
``HIRE_COUNTS_FOLD_SECONDS`` (the ``hire-counts-fold`` lease), so that the reports read a base
of one row per key and only the changes since the last fold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from common.errors import IngestError
from common.sql.db import Database
from common.sql.schema import hire_count_changes
from common.sql.schema import hire_counts as hire_counts_table
from common.stores import hire_counts
from common.stores.named_leases import try_lease

log = structlog.get_logger("ingest.summary")

LEASE_NAME = "hire-counts-fold"
# At most this many differing keys are listed in an answer; all of them are counted.
LISTED_DIFFERENCES = 100


@dataclass(frozen=True)
class Difference:
    hire_year: int
    hire_quarter: int
    department_id: int
    job_id: int
    summary: int
    recount: int


@dataclass(frozen=True)
class SummaryCheck:
    """A recount of hired_employees against the summary, in one snapshot of both."""

    keys: int  # keys (year, quarter, department, job) with hires in the recount
    hires: int  # hires in the recount
    differing: int  # keys whose count differs
    differences: list[Difference]  # the first LISTED_DIFFERENCES of them, by key
    repaired: bool  # the differences were corrected (they are listed as found)

    @property
    def matches(self) -> bool:
        return self.differing == 0


def check_summary(db: Database, *, repair: bool = False) -> SummaryCheck:
    """Recount the hires by key and compare with the summary; with ``repair``, append the
    corrections in the same snapshot, so that writes committed meanwhile stay counted."""
    session = db.write(snapshot=True) if repair else db.read(snapshot=True)
    with session as conn:
        held = hire_counts.totals(conn)
        recount = hire_counts.recounted(conn)
        corrections = {
            key: recount.get(key, 0) - held.get(key, 0)
            for key in sorted(held.keys() | recount.keys())
            if recount.get(key, 0) != held.get(key, 0)
        }
        if repair:
            hire_counts.add_changes(conn, corrections)
    listed = [
        Difference(*key, held.get(key, 0), recount.get(key, 0))
        for key in list(corrections)[:LISTED_DIFFERENCES]
    ]
    check = SummaryCheck(
        len(recount), sum(recount.values()), len(corrections), listed, repair and bool(corrections)
    )
    if corrections:
        log.warning(
            "hire counts differ from a recount",
            differing=check.differing,
            repaired=check.repaired,
            first=[d.__dict__ for d in listed[:5]],
        )
    return check


def fold_changes(db: Database) -> int:
    """Fold the summary's change rows into its base, in one transaction; keys touched.

    Then, on PostgreSQL, vacuum: the change rows the fold deleted (and the base rows it
    rewrote) stay on their pages until a vacuum clears them, and every report reads all of
    the change rows' pages. A 10M-row load leaves millions; autovacuum would clear them a
    minute or more later. The change rows are vacuumed at every fold, even one with nothing
    to fold: the vacuum that follows a busy moment cannot hand the emptied pages back while
    writers hold the table, and a later one, when all is quiet, can (and is quick).
    """
    with db.write(snapshot=True) as conn:
        written = hire_counts.fold(conn)
    db.vacuum(hire_count_changes.name)
    if written:
        db.vacuum(hire_counts_table.name)
    return written


class SummaryFold:
    """Folds the summary's changes from a worker, one worker at a time."""

    def __init__(self, db: Database, owner: str, every_seconds: float) -> None:
        self.db, self.owner, self.every_seconds = db, owner, every_seconds
        self._last = float("-inf")

    def run_if_due(self) -> None:
        if time.monotonic() - self._last < self.every_seconds:
            return
        self._last = time.monotonic()
        try:
            self.run()
        except IngestError as exc:
            log.warning("hire counts not folded; the fold runs again later", error=str(exc))

    def run(self) -> int:
        if not try_lease(self.db, LEASE_NAME, self.owner, self.every_seconds):
            return 0
        started = time.monotonic()
        keys = fold_changes(self.db)
        if keys:
            log.info("hire counts folded", keys=keys, seconds=round(time.monotonic() - started, 3))
        return keys
