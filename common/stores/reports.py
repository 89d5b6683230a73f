"""The two reports, as portable SQL over the hire counts (:mod:`common.stores.hire_counts`)
and the two small tables; hired_employees itself is never read.

Names are ordered here, not by the database, whose collation differs between SQLite (code
points), PostgreSQL (the database's locale) and SQL Server (the column's collation): by
:func:`name_key`, which ignores case and accents, then by the exact name, then by id.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select

from common.sql.catalog_tables import data_table
from common.sql.db import Database
from common.sql.functions import SumOfHires
from common.sql.schema import hire_count_changes, hire_counts
from common.stores.hire_counts import counted


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building the 2,196 rows of a year cost more than reading them.
@dataclass(slots=True)
class QuarterRow:
    department: str
    job: str
    Q1: int
    Q2: int
    Q3: int
    Q4: int


@dataclass(frozen=True)
class DepartmentHires:
    id: int
    department: str
    hired: int


def name_key(name: str) -> tuple[str, str]:
    """How names are ordered: case and accents ignored (``é`` beside ``e``, ``Z`` beside
    ``z``), then by exact code points; scripts other than Latin after it, by code point."""
    decomposed = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return folded, name


def report_year(db: Database, year: int | None) -> int:
    """``year``, or else the latest year with hires (the current year when there are none)."""
    if year is not None:
        return year
    # The latest year the summary names, unless its hires sum to nothing (deletes emptied
    # it), then the one before: each step reads one year's rows by the key's first column
    # instead of grouping every year.
    below: int | None = None
    with db.read() as conn:
        while True:
            years = []
            for table in (hire_counts, hire_count_changes):
                latest = select(func.max(table.c.hire_year))
                if below is not None:
                    latest = latest.where(table.c.hire_year < below)
                if (found := conn.execute(latest).scalar_one()) is not None:
                    years.append(int(found))
            if not years:
                return datetime.now(UTC).year
            below = max(years)
            both = counted(below)
            if conn.execute(select(SumOfHires(both.c.hires))).scalar_one():
                return below


def hires_by_quarter(db: Database, year: int) -> list[QuarterRow]:
    """Hires per department and job in each quarter of ``year`` (UTC), ordered by department,
    then job, by :func:`name_key`."""
    _departments, _jobs = data_table("departments"), data_table("jobs")
    both = counted(year)
    quarters = [
        SumOfHires(case((both.c.hire_quarter == q, both.c.hires), else_=0)).label(f"Q{q}")
        for q in range(1, 5)
    ]
    # Count by ids first, then name the few groups.
    per_pair = (
        select(both.c.department_id, both.c.job_id, *quarters)
        .group_by(both.c.department_id, both.c.job_id)
        .having(SumOfHires(both.c.hires) != 0)
        .subquery()
    )
    query = (
        select(
            _departments.c.id.label("department_id"),
            _departments.c.department,
            _jobs.c.id.label("job_id"),
            _jobs.c.job,
            *(per_pair.c[f"Q{q}"] for q in range(1, 5)),
        )
        .select_from(per_pair)
        .join(_departments, _departments.c.id == per_pair.c.department_id)
        .join(_jobs, _jobs.c.id == per_pair.c.job_id)
    )
    with db.read() as conn:
        found = list(conn.execute(query).all())
    # At most one row per department and job: few enough to order here, the same everywhere.
    # The few names are ordered once, and the rows by their names' ranks; rows are unpacked
    # by position (an attribute of a row is looked up by name each time).
    names = sorted(
        {n for _, department, _, job, *_ in found for n in (department, job)}, key=name_key
    )
    rank = {name: i for i, name in enumerate(names)}
    found.sort(key=lambda r: (rank[r[1]], rank[r[3]], r[0], r[2]))
    # Unpacked by name, not with a starred target, which builds a list per row.
    return [QuarterRow(d, j, q1, q2, q3, q4) for _, d, _, j, q1, q2, q3, q4 in found]


def departments_above_mean(db: Database, year: int) -> tuple[float, list[DepartmentHires]]:
    """Departments that hired more than the mean of hires per department in ``year``.

    The mean is over every department in the table, counting those that hired nobody as zero.
    """
    _departments = data_table("departments")
    both = counted(year)
    per_department = (
        select(both.c.department_id, SumOfHires(both.c.hires).label("hired"))
        .group_by(both.c.department_id)
        .subquery()
    )
    query = select(
        _departments.c.id,
        _departments.c.department,
        func.coalesce(per_department.c.hired, 0).label("hired"),
    ).join(per_department, per_department.c.department_id == _departments.c.id, isouter=True)
    with db.read() as conn:
        rows = [DepartmentHires(r.id, r.department, int(r.hired)) for r in conn.execute(query)]
    if not rows or not any(r.hired for r in rows):
        return 0.0, []
    mean = sum(r.hired for r in rows) / len(rows)
    above = sorted((r for r in rows if r.hired > mean), key=lambda r: (-r.hired, r.id))
    return mean, above
