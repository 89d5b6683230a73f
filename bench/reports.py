"""The reports over HTTP after a load: as the load left the summary, after a fold, and the
recount that checks it (``POST /reports/verify``)."""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Any

from sqlalchemy import func, select

from bench.results import Result, timed
from common.errors import TransientError
from common.sql.db import Database
from common.sql.schema import hire_count_changes, hire_counts
from common.stores.named_leases import try_lease
from common.usecases.summary import LEASE_NAME, fold_changes

REPORTS = ("hires-by-quarter", "departments-above-mean")
# Each report is asked this many times in a row after one unmeasured call (warm): on a shared
# machine one request says little, the median and the spread say more.
TIMES = 30


def time_reports(service: Any, label: str, query: str = "?year=2021") -> list[Result]:
    """Each report ``TIMES`` times over HTTP: the median as the seconds, the spread in notes."""
    out = []
    for report in REPORTS:
        path = f"/reports/{report}{query}"
        assert service.client.get(path).status_code == 200
        took = sorted(timed(partial(service.client.get, path)) for _ in range(TIMES))
        median = statistics.median(took)
        notes = {
            "median_ms": f"{median * 1000:.1f}",
            "min_ms": f"{took[0] * 1000:.1f}",
            "p90_ms": f"{took[int(len(took) * 0.9)] * 1000:.1f}",
            "max_ms": f"{took[-1] * 1000:.1f}",
        }
        out.append(Result(f"Report {report} {query}, {label}", median, 0, notes))
    return out


def summary_rows(db: Database) -> tuple[int, int]:
    """Rows in the summary's base and in its change rows."""
    with db.read() as conn:
        base, changes = (
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (hire_counts, hire_count_changes)
        )
    return base, changes


def _fold_alone(db: Database) -> float:
    """Take the fold's lease from the workers for good (it passes from one of their folds to
    the next with a gap of up to a second), then fold what is left; seconds the fold took.
    No worker folds while the folded reports are timed."""
    deadline = time.monotonic() + 120
    while not try_lease(db, LEASE_NAME, "bench", 3600):
        if time.monotonic() > deadline:
            raise TimeoutError("the workers kept the fold's lease")
        time.sleep(0.05)
    for attempt in range(5):
        try:
            start = time.perf_counter()
            fold_changes(db)
            return time.perf_counter() - start
        except TransientError:  # a worker's fold that outlived its lease, still committing
            time.sleep(1 + attempt)
    raise RuntimeError("the summary could not be folded")


def reports_after_load(service: Any, rows: int, database_url: str) -> list[Result]:
    """The reports as the load left the summary (changes not yet folded, unless a worker's
    chore came by), the fold, the reports again, and a recount (``POST /reports/verify``)."""
    db = Database.from_url(database_url)
    database = "PostgreSQL" if db.dialect == "postgresql" else "SQLite"
    try:
        base, changes = summary_rows(db)
        where = f"{rows:,} rows, {database}"
        # A worker's fold may come by while these are timed, as it would for any reader.
        out = time_reports(service, f"{where}, {base:,} base and {changes:,} change rows")
        base, changes = summary_rows(db)
        seconds = _fold_alone(db)
        out.append(
            Result(f"Fold of {changes:,} change rows, {database} (vacuum included)", seconds, 0)
        )
        base, changes = summary_rows(db)
        out += time_reports(service, f"{where}, folded ({base:,} base rows)")
        out += time_reports(service, f"{where}, folded", query="")
        start = time.perf_counter()
        answer = service.client.post("/reports/verify")
        assert answer.json()["matches"], answer.text
        out.append(Result(f"POST /reports/verify ({where})", time.perf_counter() - start, rows))
        return out
    finally:
        db.dispose()
