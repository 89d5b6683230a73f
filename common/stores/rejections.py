"""Rejected rows: stored by job (line) or batch (index) with their raw text and broken rules.

A stored rejection is its raw text plus the compact codes of the rules it broke (see
:mod:`common.model.rules`), keyed by its job's sequence number and line: nothing else is repeated
per row, so storage grows with the input's size and not with a multiple of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import structlog
from sqlalchemy import Connection, Table, func, insert, select

from common.model.catalog import TableSpec
from common.model.rows import FieldError, Rejection
from common.model.rules import decode, encode, rule_counts
from common.sql.bulk import bulk_insert
from common.sql.db import Database, utcnow
from common.sql.schema import batch_rejections, batches, job_rejections

log = structlog.get_logger("ingest.rejections")

# Longer raw text is cut: no valid row comes near it, and a 10 MB line helps nobody in a table.
MAX_RAW_CHARS = 8192
# Rejections logged with each block or batch, as examples; the rest are counted per rule.
LOGGED_EXAMPLES = 3


def _clip(raw: str) -> str:
    # PostgreSQL text cannot hold NUL; show it the way undecodable bytes are shown.
    raw = raw.replace("\x00", "\\x00")
    if len(raw) <= MAX_RAW_CHARS:
        return raw
    return f"{raw[:MAX_RAW_CHARS]}… ({len(raw)} characters in all)"


@dataclass(frozen=True)
class StoredRejection:
    line: int
    raw: str
    errors: tuple[FieldError, ...]


def _insert(
    conn: Connection, table: Table, key: str, owner: int, rejections: Sequence[Rejection]
) -> None:
    if not rejections:
        return
    columns = {
        "line" if key == "job_seq" else "idx": pa.array([r.line for r in rejections], pa.int64()),
        key: pa.array([owner] * len(rejections), pa.int64()),
        "raw": pa.array([_clip(r.raw) for r in rejections], pa.string()),
        "rules": pa.array(_codes(rejections), pa.string()),
    }
    if conn.dialect.name in ("postgresql", "sqlite"):
        bulk_insert(conn, table.name, pa.table(columns))
        return
    conn.execute(insert(table), pa.table(columns).to_pylist())


def _codes(rejections: Sequence[Rejection]) -> list[str]:
    # Rejections alike share their errors' tuple (see common.pipeline.csvparse): encode each
    # tuple once.
    known: dict[int, str] = {}
    codes = []
    for r in rejections:
        code = known.get(id(r.errors))
        if code is None:
            code = known[id(r.errors)] = encode(r.errors)
        codes.append(code)
    return codes


def store_job_rejections(conn: Connection, job_seq: int, rejections: Sequence[Rejection]) -> None:
    """Insert a job's rejections in the caller's transaction."""
    _insert(conn, job_rejections, "job_seq", job_seq, rejections)


def record_batch(
    conn: Connection,
    batch_id: str,
    table: str,
    inserted: int,
    updated: int,
    rejections: Sequence[Rejection],
) -> None:
    """Note a batch and store its rejections, in the caller's transaction."""
    key = conn.execute(
        insert(batches).values(
            batch_id=batch_id,
            table_name=table,
            rows_inserted=inserted,
            rows_updated=updated,
            rows_rejected=len(rejections),
            created_at=utcnow(),
        )
    ).inserted_primary_key
    assert key is not None
    _insert(conn, batch_rejections, "batch_seq", int(key[0]), rejections)


def log_rejections(rejections: Sequence[Rejection], **context: object) -> None:
    """One log line for the rejections of a block or batch: counts per rule, a few examples."""
    if not rejections:
        return
    log.info(
        "rows rejected",
        count=len(rejections),
        rules=rule_counts([r.errors for r in rejections]),
        examples=[
            {"line": r.line, "rules": [f"{e.column}:{e.rule}" for e in r.errors]}
            for r in rejections[:LOGGED_EXAMPLES]
        ],
        **context,
    )


class RejectionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def page(
        self, spec: TableSpec, job_seq: int, limit: int, offset: int
    ) -> tuple[list[StoredRejection], int]:
        """A page of a job's rejections by line, with their messages, and how many in all."""
        jr = job_rejections.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(jr.line, jr.raw, jr.rules)
                .where(jr.job_seq == job_seq)
                .order_by(jr.line)
                .limit(limit)
                .offset(offset)
            ).all()
            total = conn.execute(
                select(func.count()).select_from(job_rejections).where(jr.job_seq == job_seq)
            ).scalar_one()
        return [_told(spec, r) for r in rows], int(total)

    def after(self, spec: TableSpec, job_seq: int, line: int, limit: int) -> list[StoredRejection]:
        """Up to ``limit`` of a job's rejections after line ``line``, for reading them all."""
        jr = job_rejections.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(jr.line, jr.raw, jr.rules)
                .where(jr.job_seq == job_seq, jr.line > line)
                .order_by(jr.line)
                .limit(limit)
            ).all()
        return [_told(spec, r) for r in rows]


def _told(spec: TableSpec, row: Any) -> StoredRejection:
    return StoredRejection(row.line, row.raw, decode(spec, row.raw, row.rules, from_json=False))
