"""The databases' own loaders, the yardsticks the service is held to.

The bare-table baselines load into a table with the primary key alone, as the service's
``hired_employees`` now is; the same loads with the covering index the reports needed before
the hire counts (migration 0010) show what that index cost every loader.
"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
from pathlib import Path

import psycopg

from bench.databases import COLUMNS, drop_pg_database, libpq, migrated, new_pg_database
from bench.results import Result, timed
from common.sql.db import Database

_PG_TABLE = (
    "CREATE TABLE hired_employees (id BIGINT PRIMARY KEY, name VARCHAR(255) NOT NULL, "
    "datetime TIMESTAMP NOT NULL, department_id BIGINT NOT NULL, job_id BIGINT NOT NULL)"
)
_SQLITE_TABLE = (
    "CREATE TABLE hired_employees (id INTEGER PRIMARY KEY, name VARCHAR(255) NOT NULL, "
    "datetime DATETIME NOT NULL, department_id INTEGER NOT NULL, job_id INTEGER NOT NULL)"
)
_OLD_INDEX = (
    "CREATE INDEX ix_hired_employees_datetime_dept_job "
    "ON hired_employees (datetime, department_id, job_id)"
)


def _table(with_index: bool) -> str:
    return "the reports' old index" if with_index else "primary key only"


def pg_copy(path: Path, rows: int, *, with_index: bool = False) -> Result:
    """``psql \\copy`` of the file into a table with its primary key (and the old index)."""
    url = new_pg_database()
    try:
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute(_PG_TABLE)
            if with_index:
                conn.execute(_OLD_INDEX)
        command = f"\\copy hired_employees ({','.join(COLUMNS)}) FROM '{path}' CSV"
        seconds = timed(
            lambda: subprocess.run(["psql", "-q", libpq(url), "-c", command], check=True)
        )
        return Result(f"PostgreSQL: psql \\copy, {_table(with_index)}", seconds, rows)
    finally:
        drop_pg_database(url)


def _to_sql(url: str, path: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(path, header=None, names=COLUMNS, parse_dates=["datetime"])
    frame["datetime"] = frame["datetime"].dt.tz_convert(None)
    frame.to_sql("hired_employees", Database.from_url(url).engine, if_exists="append", index=False)


def pg_to_sql(path: Path, rows: int) -> Result:
    url = new_pg_database()
    try:
        migrated(url).dispose()
        return Result("PostgreSQL: read_csv + to_sql", timed(lambda: _to_sql(url, path)), rows)
    finally:
        drop_pg_database(url)


def sqlite_executemany(path: Path, rows: int, workdir: Path, *, with_index: bool = False) -> Result:
    """One ``executemany`` transaction of the parsed rows into a table with its primary key
    (and the old index)."""
    workdir.mkdir(parents=True, exist_ok=True)
    file = workdir / f"executemany{'_indexed' if with_index else ''}.db"
    with path.open(newline="") as f:
        data = list(csv.reader(f))
    conn = sqlite3.connect(file)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(_SQLITE_TABLE)
    if with_index:
        conn.execute(_OLD_INDEX)

    def load() -> None:
        conn.executemany(
            f"INSERT INTO hired_employees ({','.join(COLUMNS)}) VALUES (?,?,?,?,?)", data
        )
        conn.commit()

    seconds = timed(load)
    conn.close()
    return Result(
        f"SQLite: executemany, one transaction, {_table(with_index)}",
        seconds,
        rows,
        {"note": "CSV already in memory"},
    )


def sqlite_to_sql(path: Path, rows: int, workdir: Path) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'to_sql.db'}"
    migrated(url).dispose()
    return Result("SQLite: read_csv + to_sql", timed(lambda: _to_sql(url, path)), rows)
