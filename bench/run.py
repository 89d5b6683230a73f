"""``make bench``: the service against the databases' own loaders, side by side.

    python -m bench.run [--rows 1000000] [--batch-seconds 30] [--scale-rows 0]
                        [--scale-workers 1,2,4] [--scale-backup] [--scale-sqlite]
                        [--api-processes N] [--turns 2]
                        [--only pg,sqlite,atomic,batches,mixed,vacuum[,validation]]

Prints one table: seconds, rows/s, peak RSS, and the ratios of the service to the baselines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.baselines import pg_copy, pg_to_sql, sqlite_executemany, sqlite_to_sql
from bench.databases import drop_pg_database, new_pg_database
from bench.generate import write_hired, write_parents
from bench.loads import DATA, batches, service_load
from bench.mixed import mixed_load
from bench.results import Result, fastest_in_turns, print_table, ratio
from bench.vacuum import vacuum_worth
from bench.validation import validation_speed


def _postgresql(path: Path, rows: int, work: Path, turns: int, results: list[Result]) -> list[str]:
    after: list[Result] = []

    def service(turn: int) -> Result:
        url = new_pg_database()
        try:
            # The reports, the fold, the recount and the backup after the first load only.
            label = "PostgreSQL: the service, end to end"
            where, then = work / f"pg{turn}", after if turn == 0 else None
            return service_load(label, path, rows, where, url, after_load=then)
        finally:
            drop_pg_database(url)

    bare, indexed, to_sql, loaded = fastest_in_turns(
        [
            lambda _: pg_copy(path, rows),
            lambda _: pg_copy(path, rows, with_index=True),
            lambda _: pg_to_sql(path, rows),
            service,
        ],
        turns,
    )
    results += [bare, indexed, to_sql, loaded, *after]
    return [
        ratio("PostgreSQL: service / \\copy (primary key only)", loaded, bare, "<= 1.5"),
        ratio("PostgreSQL: \\copy with the old index / without", indexed, bare),
        ratio("PostgreSQL: read_csv+to_sql / service", to_sql, loaded, ">= 8"),
        ratio("PostgreSQL: restore / ingest", after[-1], loaded, "<= 2.0"),
    ]


def _sqlite(path: Path, rows: int, work: Path, turns: int, results: list[Result]) -> list[str]:
    after: list[Result] = []

    def service(turn: int) -> Result:
        label = "SQLite: the service, end to end"
        then = after if turn == 0 else None
        return service_load(label, path, rows, work / f"sqlite{turn}", None, after_load=then)

    bare, indexed, to_sql, loaded = fastest_in_turns(
        [
            lambda turn: sqlite_executemany(path, rows, work / f"executemany{turn}"),
            lambda turn: sqlite_executemany(
                path, rows, work / f"executemany{turn}", with_index=True
            ),
            lambda turn: sqlite_to_sql(path, rows, work / f"to_sql{turn}"),
            service,
        ],
        turns,
    )
    results += [bare, indexed, to_sql, loaded, *after]
    return [
        ratio("SQLite: service / executemany (primary key only)", loaded, bare, "<= 1.2"),
        ratio("SQLite: executemany with the old index / without", indexed, bare),
        ratio("SQLite: read_csv+to_sql / service", to_sql, loaded, ">= 8"),
        ratio("SQLite: restore / ingest", after[-1], loaded, "<= 2.0"),
    ]


def _atomic(path: Path, rows: int, work: Path, turns: int, results: list[Result]) -> list[str]:
    """The default load and an all-or-nothing one, taking turns, each into a new database."""

    def load(mode: str, options: dict[str, str]) -> Callable[[int], Result]:
        def run(turn: int) -> Result:
            url = new_pg_database()
            try:
                label = f"PostgreSQL: the service, {mode} load"
                return service_load(label, path, rows, work / f"{mode}{turn}", url, options=options)
            finally:
                drop_pg_database(url)

        return run

    default, atomic = fastest_in_turns(
        [load("default", {}), load("atomic", {"atomic": "true"})], turns
    )
    results += [default, atomic]
    return [ratio("PostgreSQL: atomic / default load", atomic, default, "<= 1.5")]


def _scale(rows: int, workers: list[int], backup: bool, work: Path) -> tuple[list[Result], str]:
    big = write_hired(DATA, rows)
    bare = pg_copy(big, rows)
    results = [bare]
    timings = {}
    for n in workers:
        url = new_pg_database()
        try:
            # The one-worker run also times the reports (and, if asked, a backup) at this size.
            after: list[Result] | None = [] if n == 1 else None
            label = f"PostgreSQL: {rows:,} rows, {n} worker(s)"
            r = service_load(label, big, rows, work / f"scale{n}", url, n, after, backup)
            results.append(r)
            results += after or []
            timings[n] = r.seconds
        finally:
            drop_pg_database(url)
    speed = ", ".join(f"{n} workers {timings[1] / t:.2f}x" for n, t in timings.items())
    first = results[1]
    line = ratio(f"PostgreSQL {rows:,} rows: service (1 worker) / \\copy", first, bare)
    return results, f"{line}; speed-up: {speed}" if 1 in timings else line


def _scale_sqlite(rows: int, work: Path) -> list[Result]:
    """The large file through the service on SQLite, one worker, then the reports."""
    big = write_hired(DATA, rows)
    after: list[Result] = []
    label = f"SQLite: {rows:,} rows, 1 worker"
    loaded = service_load(label, big, rows, work / "scale-sqlite", None, 1, after, backup=False)
    return [loaded, *after]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-seconds", type=float, default=30.0)
    parser.add_argument(
        "--scale-rows", type=int, default=0, help="also load a file of this many rows"
    )
    parser.add_argument(
        "--scale-workers", default="1,2,4", help="worker counts for the --scale-rows runs"
    )
    parser.add_argument(
        "--scale-backup", action="store_true", help="back up and restore the --scale-rows table"
    )
    parser.add_argument(
        "--scale-sqlite", action="store_true", help="also load --scale-rows on SQLite, 1 worker"
    )
    parser.add_argument(
        "--api-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="API_PROCESSES of the batches run, beside one with 1 (default: the cores)",
    )
    parser.add_argument(
        "--turns",
        type=int,
        default=2,
        help="runs of each load and baseline compared in a ratio, taking turns; the fastest counts",
    )
    parser.add_argument(
        "--only",
        default="pg,sqlite,atomic,batches,mixed,vacuum",
        help="comma-separated; 'validation' adds parsing and validation alone, per 1M rows",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    DATA.mkdir(exist_ok=True)
    write_parents(DATA)
    path = write_hired(DATA, args.rows)
    results: list[Result] = []
    ratios: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    if "pg" in only:
        ratios += _postgresql(path, args.rows, work, args.turns, results)
    if "sqlite" in only:
        ratios += _sqlite(path, args.rows, work, args.turns, results)
    if "atomic" in only:
        ratios += _atomic(path, args.rows, work, args.turns, results)
    if "batches" in only:
        for processes in sorted({1, args.api_processes}):
            results.append(batches(args.batch_seconds, 4, work / "batches", processes))
    if "mixed" in only:
        results += mixed_load(path, args.rows, work, 4, 4, args.api_processes)
    if "vacuum" in only:
        results += vacuum_worth(path, args.rows)
    if "validation" in only:
        results += validation_speed(args.rows)
    if args.scale_rows and args.scale_sqlite:
        results += _scale_sqlite(args.scale_rows, work)
    if args.scale_rows and args.scale_workers:
        workers = [int(n) for n in args.scale_workers.split(",")]
        scaled, line = _scale(args.scale_rows, workers, args.scale_backup, work)
        results += scaled
        ratios.append(line)
    print_table(results, ratios)


if __name__ == "__main__":
    main()
