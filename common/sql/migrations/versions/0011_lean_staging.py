"""Lean staging: no key, an index on (job_seq, line), staged hire counts; UNLOGGED on PostgreSQL

Revision ID: 0011
Revises: 0010

Each staging table is created anew beside the old one, which is renamed, and the rows in it
(of loads staged but not yet published) are copied over before it is dropped. Loads staged
before this revision have no staged hire counts: their publish finds the counts short of the
rows and stages them again.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

LONG_TEXT = sa.UnicodeText().with_variant(mssql.NVARCHAR(), "mssql")
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime().with_variant(mssql.DATETIME2(precision=6), "mssql")  # type: ignore[no-untyped-call]
# The data tables as they stand at this revision, column by column.
_TABLES: dict[str, list[tuple[str, sa.types.TypeEngine[Any]]]] = {
    "departments": [("id", ID), ("department", sa.Unicode(255))],
    "jobs": [("id", ID), ("job", sa.Unicode(255))],
    "hired_employees": [
        ("id", ID),
        ("name", sa.Unicode(255)),
        ("datetime", TIMESTAMP),
        ("department_id", ID),
        ("job_id", ID),
    ],
}


def _columns(table: str) -> list[sa.Column[Any]]:
    return [
        sa.Column("job_seq", sa.Integer(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("raw", LONG_TEXT, nullable=False),
        *(sa.Column(name, kind, nullable=False) for name, kind in _TABLES[table]),
    ]


def _rebuild(table: str, *, lean: bool) -> None:
    """Create ``stage_<table>`` again (lean: as of this revision; else as of 0010) and move
    its rows into the new one."""
    name = f"stage_{table}"
    old = f"{name}_old"
    postgresql = op.get_context().dialect.name == "postgresql"
    op.rename_table(name, old)
    if lean:
        op.create_table(name, *_columns(table), prefixes=["UNLOGGED"] if postgresql else [])
        op.create_index(f"ix_{name}_job_line", name, ["job_seq", "line"], postgresql_using="brin")
    else:
        op.create_table(name, *_columns(table), sa.PrimaryKeyConstraint("job_seq", "line"))
        op.create_index(f"ix_{name}_job_id", name, ["job_seq", "id"])
    names = ", ".join(["job_seq", "line", "raw", *(n for n, _ in _TABLES[table])])
    op.execute(f"INSERT INTO {name} ({names}) SELECT {names} FROM {old}")
    op.drop_table(old)


def upgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_stage_{table}_job_id", table_name=f"stage_{table}")
        _rebuild(table, lean=True)
    postgresql = op.get_context().dialect.name == "postgresql"
    op.create_table(
        "stage_hire_counts",
        sa.Column("job_seq", sa.Integer(), nullable=False),
        sa.Column("hire_year", sa.Integer(), nullable=False),
        sa.Column("hire_quarter", sa.Integer(), nullable=False),
        sa.Column("department_id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("hires", sa.BigInteger(), nullable=False),
        prefixes=["UNLOGGED"] if postgresql else [],
    )
    op.create_index("ix_stage_hire_counts_job_seq", "stage_hire_counts", ["job_seq"])


def downgrade() -> None:
    op.drop_table("stage_hire_counts")
    for table in _TABLES:
        op.drop_index(f"ix_stage_{table}_job_line", table_name=f"stage_{table}")
        _rebuild(table, lean=False)
