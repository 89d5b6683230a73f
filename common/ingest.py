"""One transaction's worth of rows: insert the valid ones and store every rejection."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from common.loader import load_rows
from common.rejections import store_rejections
from common.rows import Rejection, ValidRows
from common.tables import TableSpec


@dataclass(frozen=True)
class Committed:
    read: int
    inserted: int
    updated: int
    rejected: list[Rejection]


def write_rows(
    conn: Connection,
    spec: TableSpec,
    rows: ValidRows,
    on_conflict: str,
    *,
    job_id: str | None = None,
    batch_id: str | None = None,
) -> Committed:
    """Load ``rows`` and store the rejections (from validation and from the database)."""
    loaded = load_rows(conn, spec, rows, on_conflict)
    rejected = sorted([*rows.rejected, *loaded.rejected], key=lambda r: r.line)
    store_rejections(conn, spec.name, rejected, job_id=job_id, batch_id=batch_id)
    read = rows.valid_count + len(rows.rejected)
    return Committed(read, loaded.inserted, loaded.updated, rejected)
