"""Is the VACUUM (ANALYZE) after a large load still worth it, now that the reports read the
hire counts instead of an index of hired_employees?

On a table loaded with ``\\copy`` (autovacuum off for it, so that nothing else vacuums in
between), the reads that still touch hired_employees are timed before and after one
``VACUUM (ANALYZE)``: the loader's id lookup for a block of ids that exist (a re-upload with
``on_conflict=update``), the recount of ``POST /reports/verify``, and the reports.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pyarrow as pa

from bench.databases import COLUMNS, drop_pg_database, libpq, migrated, new_pg_database
from bench.results import Result, timed
from common.sql.bulk import existing_among
from common.sql.catalog_tables import data_table
from common.sql.db import Database
from common.stores import hire_counts
from common.stores.reports import departments_above_mean, hires_by_quarter
from common.usecases.summary import check_summary, fold_changes

BLOCK_IDS = 42_000  # about one 2 MiB block
_RUNS = 3


def _reads(db: Database, rows: int, when: str) -> list[Result]:
    middle = max(1, rows // 2 - BLOCK_IDS // 2)
    ids = pa.array(range(middle, middle + min(BLOCK_IDS, rows)), pa.int64())

    def lookup() -> None:
        with db.read() as conn:
            existing_among(conn, "hired_employees", ids)

    def reports() -> None:
        hires_by_quarter(db, 2021)
        departments_above_mean(db, 2021)

    def best(fn: Callable[[], object]) -> float:
        return min(timed(fn) for _ in range(_RUNS))

    return [
        Result(f"{when}: id lookup of a block ({len(ids):,} ids)", best(lookup), len(ids)),
        Result(f"{when}: recount (verify, {rows:,} rows)", best(lambda: check_summary(db)), rows),
        Result(f"{when}: both reports", best(reports), 0),
    ]


def vacuum_worth(path: Path, rows: int) -> list[Result]:
    url = new_pg_database()
    db = migrated(url)
    try:
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute("ALTER TABLE hired_employees SET (autovacuum_enabled = false)")
        command = f"\\copy hired_employees ({','.join(COLUMNS)}) FROM '{path}' CSV"
        subprocess.run(["psql", "-q", libpq(url), "-c", command], check=True)
        with db.write() as conn:  # the first full scan also sets the rows' hint bits
            hire_counts.add_from(conn, "hired_employees", data_table("hired_employees"))
        fold_changes(db)
        before = _reads(db, rows, "Before VACUUM")
        vacuum = timed(lambda: db.refresh_after_bulk_load("hired_employees"))
        after = _reads(db, rows, "After VACUUM")
        return [*before, Result(f"VACUUM (ANALYZE) of {rows:,} rows", vacuum, rows), *after]
    finally:
        db.dispose()
        drop_pg_database(url)
