"""Hire counts per quarter, department and job for the reports; hired_employees keeps its key only

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_INDEX = "ix_hired_employees_datetime_dept_job"
_INDEXED = ["datetime", "department_id", "job_id"]


def _key_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("hire_year", sa.Integer(), nullable=False),
        sa.Column("hire_quarter", sa.Integer(), nullable=False),
        sa.Column("department_id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("hires", sa.BigInteger(), nullable=False),
    ]


def _counts_of_existing_hires() -> sa.Select[tuple[int, int, int, int, int]]:
    hired = sa.table(
        "hired_employees",
        sa.column("datetime", sa.DateTime()),
        sa.column("department_id", sa.BigInteger()),
        sa.column("job_id", sa.BigInteger()),
    )
    month = sa.cast(sa.extract("month", hired.c.datetime), sa.Integer)
    keyed = sa.select(
        sa.cast(sa.extract("year", hired.c.datetime), sa.Integer).label("hire_year"),
        ((month + sa.literal_column("2")) // sa.literal_column("3")).label("hire_quarter"),
        hired.c.department_id,
        hired.c.job_id,
    ).subquery()
    key = (keyed.c.hire_year, keyed.c.hire_quarter, keyed.c.department_id, keyed.c.job_id)
    return sa.select(*key, sa.func.count().label("hires")).group_by(*key)


def upgrade() -> None:
    counts = op.create_table(
        "hire_counts",
        *_key_columns(),
        sa.PrimaryKeyConstraint("hire_year", "hire_quarter", "department_id", "job_id"),
    )
    op.create_table("hire_count_changes", *_key_columns())
    assert counts is not None
    op.execute(
        counts.insert().from_select(
            ["hire_year", "hire_quarter", "department_id", "job_id", "hires"],
            _counts_of_existing_hires(),
        )
    )
    op.drop_index(_INDEX, table_name="hired_employees")


def downgrade() -> None:
    op.create_index(_INDEX, "hired_employees", _INDEXED)
    op.drop_table("hire_count_changes")
    op.drop_table("hire_counts")
