"""One transaction's worth of rows: insert the valid ones and store every rejection."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from common.model.catalog import TableSpec
from common.model.rows import Rejection, ValidRows
from common.sql.loader import load_rows
from common.stores.rejections import record_batch, store_job_rejections
from common.stores.staging import stage


@dataclass(frozen=True)
class Written:
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
    job_seq: int | None = None,
    batch_id: str | None = None,
) -> Written:
    """Load ``rows`` and store the rejections (from validation and from the database) for the
    job ``job_seq`` or, with the batch's counts, for the batch ``batch_id``."""
    loaded = load_rows(conn, spec, rows, on_conflict)
    rejected = sorted([*rows.rejected, *loaded.rejected], key=lambda r: r.line)
    if job_seq is not None:
        store_job_rejections(conn, job_seq, rejected)
    if batch_id is not None:
        record_batch(conn, batch_id, spec.name, loaded.inserted, loaded.updated, rejected)
    read = rows.valid_count + len(rows.rejected)
    return Written(read, loaded.inserted, loaded.updated, rejected)


def stage_rows(
    conn: Connection,
    spec: TableSpec,
    rows: ValidRows,
    on_conflict: str,
    *,
    job_seq: int,
) -> Written:
    """For a staged load: keep ``rows`` in the staging table and store the rejections found by
    validation; the database's checks wait for the publish. ``inserted`` counts rows staged."""
    staged = stage(conn, spec, job_seq, rows)
    store_job_rejections(conn, job_seq, rows.rejected)
    return Written(rows.valid_count + len(rows.rejected), staged, 0, list(rows.rejected))
