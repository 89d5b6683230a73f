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
from sqlalchemy import ColumnElement, Connection, Table, and_, case, func, insert, not_, or_, select

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
# Rules whose rejection keeps a stand-in for the line rather than the line itself.
_NOT_KEPT_WHOLE = ("encoding", "line_too_long")
_NUL = "\\x00"  # how a NUL is kept (see _clip)


def _clip(raw: str) -> str:
    # PostgreSQL text cannot hold NUL; show it the way undecodable bytes are shown.
    raw = raw.replace("\x00", _NUL)
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

    def retry_counts(self, job_seq: int) -> tuple[int, int]:
        """How many of a job's rejections keep their line as it was (they can be retried), and
        how many keep a stand-in (not UTF-8, too long, cut, or a NUL shown as ``\\x00``)."""
        jr = job_rejections.c
        with self.db.read() as conn:
            total, whole = conn.execute(
                select(func.count(), func.sum(case((_kept_whole(), 1), else_=0))).where(
                    jr.job_seq == job_seq
                )
            ).one()
        return int(whole or 0), int(total) - int(whole or 0)

    def lines_kept_whole(
        self, job_seq: int, first: int, end: int, limit: int
    ) -> list[tuple[int, str]]:
        """Up to ``limit`` of a job's rejections kept whole, on lines ``first`` to ``end - 1``,
        by line: each line and its text."""
        jr = job_rejections.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(jr.line, jr.raw)
                .where(jr.job_seq == job_seq, jr.line >= first, jr.line < end, _kept_whole())
                .order_by(jr.line)
                .limit(limit)
            ).all()
        return [(int(r.line), str(r.raw)) for r in rows]

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


def _kept_whole() -> ColumnElement[bool]:
    jr = job_rejections.c
    stand_ins = [
        or_(
            jr.rules.startswith(f"row:{rule}", autoescape=True),
            jr.rules.contains(f";row:{rule}", autoescape=True),
        )
        for rule in _NOT_KEPT_WHOLE
    ]
    return and_(
        not_(or_(*stand_ins)),
        func.length(jr.raw) <= MAX_RAW_CHARS,
        not_(jr.raw.contains(_NUL, autoescape=True)),
    )
