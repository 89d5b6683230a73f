"""Rejected rows: stored with their job or batch, line or index, raw text and broken rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, func, select

from common.db import Database, utcnow
from common.rows import Rejection
from common.schema import rejected_rows as rr

log = structlog.get_logger("ingest.rejections")

# Longer raw text is cut: no valid row comes near it, and a 10 MB line helps nobody in a table.
MAX_RAW_CHARS = 8192


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
    errors: list[dict[str, str]]
    created_at: datetime


def store_rejections(
    conn: Connection,
    table: str,
    rejections: Sequence[Rejection],
    *,
    job_id: str | None = None,
    batch_id: str | None = None,
) -> None:
    """Insert ``rejections`` in the caller's transaction."""
    if not rejections:
        return
    now = utcnow()
    conn.execute(
        rr.insert(),
        [
            {
                "table_name": table,
                "job_id": job_id,
                "batch_id": batch_id,
                "line": r.line,
                "raw": _clip(r.raw),
                "errors": r.errors_json(),
                "created_at": now,
            }
            for r in rejections
        ],
    )


def log_rejections(rejections: Sequence[Rejection], **context: Any) -> None:
    """One structured log line per rejected row, after the rows are committed."""
    for r in rejections:
        log.info(
            "row rejected",
            line=r.line,
            rules=[e.rule for e in r.errors],
            errors=[e.as_dict() for e in r.errors],
            **context,
        )


class RejectionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def page(
        self, limit: int, offset: int, *, job_id: str | None = None, batch_id: str | None = None
    ) -> tuple[list[StoredRejection], int]:
        where = rr.c.job_id == job_id if job_id is not None else rr.c.batch_id == batch_id
        with self.db.read() as conn:
            rows = conn.execute(
                select(rr.c.line, rr.c.raw, rr.c.errors, rr.c.created_at)
                .where(where)
                .order_by(rr.c.line, rr.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            total = conn.execute(select(func.count()).select_from(rr).where(where)).scalar_one()
        return [
            StoredRejection(r.line, r.raw, orjson.loads(r.errors), r.created_at) for r in rows
        ], int(total)
