"""Migration 0010 counts the hires already stored, drops the reports' index, and goes back."""

from __future__ import annotations

from datetime import datetime

from alembic import command
from sqlalchemy import insert, inspect

from common.sql.catalog_tables import data_table
from common.sql.db import Database
from common.sql.migrate import _config, upgrade
from common.stores.hire_counts import totals
from common.usecases.summary import check_summary

REPORTS_INDEX = "ix_hired_employees_datetime_dept_job"


def _indexes(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return {str(i["name"]) for i in inspect(conn).get_indexes("hired_employees")}


def test_the_upgrade_counts_existing_hires_and_the_downgrade_restores_the_index(
    empty_database: Database,
) -> None:
    # Given hires stored before the summary existed, on quarter and year boundaries,
    db = empty_database
    upgrade(db, "0009")
    hires = [
        (1, datetime(2020, 12, 31, 23, 59, 59), 1, 1),
        (2, datetime(2021, 1, 1, 0, 0, 0), 1, 1),
        (3, datetime(2021, 3, 31, 23, 59, 59, 999999), 1, 1),
        (4, datetime(2021, 4, 1), 1, 1),
        (5, datetime(2021, 4, 2), 2, 1),
        (6, datetime(2021, 12, 1), 2, 3),
    ]
    with db.write() as conn:
        conn.execute(insert(data_table("departments")), [{"id": 1, "department": "A"}])
        conn.execute(insert(data_table("departments")), [{"id": 2, "department": "B"}])
        conn.execute(insert(data_table("jobs")), [{"id": j, "job": f"J{j}"} for j in (1, 3)])
        conn.execute(
            insert(data_table("hired_employees")),
            [
                {"id": i, "name": f"P{i}", "datetime": at, "department_id": d, "job_id": j}
                for i, at, d, j in hires
            ],
        )
    assert REPORTS_INDEX in _indexes(db)

    # when the schema is upgraded,
    upgrade(db)

    # then the summary holds them by quarter, and hired_employees has its key alone;
    with db.read() as conn:
        assert totals(conn) == {
            (2020, 4, 1, 1): 1,
            (2021, 1, 1, 1): 2,
            (2021, 2, 1, 1): 1,
            (2021, 2, 2, 1): 1,
            (2021, 4, 2, 3): 1,
        }
    assert check_summary(db).matches
    assert _indexes(db) == set()

    # and a downgrade puts the index back and the summary away.
    with db.engine.connect() as conn:
        command.downgrade(_config(conn), "0009")
        conn.commit()
    assert REPORTS_INDEX in _indexes(db)
    with db.engine.connect() as conn:
        assert not {"hire_counts", "hire_count_changes"} & set(inspect(conn).get_table_names())
