"""Junk input costs storage and logs in proportion to its size, not a multiple of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text

from common.bootstrap import Services
from tests.support.flow import api_client, drain, service_set, upload

LINES = 1_000_000
# A stored rejection may cost its raw text plus about this much, indexes included.
OVERHEAD_BYTES = 100


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    with service_set(tmp_path, database_url) as built:
        yield built


def stored_bytes(services: Services) -> int:
    """What the database holds on disk for everything (SQLite) or for the rejections
    (PostgreSQL: heap, index and TOAST)."""
    if services.db.dialect == "sqlite":
        with services.db.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = Path(services.db.engine.url.database or "")
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    with services.db.read() as conn:
        conn.execute(text("ANALYZE job_rejections"))
        return int(
            conn.execute(text("SELECT pg_total_relation_size('job_rejections')")).scalar_one()
        )


def test_a_million_junk_lines_cost_their_bytes_plus_a_little_and_a_log_line_per_block(
    services: Services,
) -> None:
    # Given a file of a million lines that are all junk
    junk = b"x\n" * LINES
    before = stored_bytes(services)

    # When it is uploaded and ingested
    with structlog.testing.capture_logs() as logs:
        with api_client(services) as client:
            job_id = upload(client, "departments", junk)["job_id"]
        drain(services)

    # Then every line is rejected and kept
    job = services.jobs.get(job_id)
    assert (job.rows_read, job.rows_rejected) == (LINES, LINES)
    # And storage grew by the raw text (one byte a line) plus a small overhead a line
    grown = stored_bytes(services) - before
    print(f"{services.db.dialect}: {grown / LINES:.1f} bytes per rejection")
    assert grown <= LINES * (1 + OVERHEAD_BYTES), grown / LINES
    # And the logs grew with the blocks, not the lines: a line per block and a few more
    size = sum(len(json.dumps(e, default=str)) for e in logs)
    rejected_lines = [e for e in logs if e["event"] == "rows rejected"]
    assert sum(e["count"] for e in rejected_lines) == LINES
    assert rejected_lines[0]["rules"] == {"field_count": rejected_lines[0]["count"]}
    assert len(rejected_lines[0]["examples"]) == 3
    assert len(logs) < 200, len(logs)
    assert size < 100_000, size
