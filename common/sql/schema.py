"""SQLAlchemy Core tables of the service's own bookkeeping (the data tables are the catalog's:
see :mod:`common.sql.catalog_tables`).

Times are stored as naive UTC ``DateTime`` so that SQLite, PostgreSQL and SQL Server agree.
The migrations under ``common/sql/migrations`` create exactly these (and the shipped catalog's
tables, which they created before tables were declared in a catalog); a test keeps them in step.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Unicode,
    UnicodeText,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mssql

metadata = MetaData()

# INTEGER PRIMARY KEY is SQLite's rowid: 64-bit and the fastest key it has.
Id = BigInteger().with_variant(Integer(), "sqlite")
# SQL Server's DATETIME keeps 1/300 s; DATETIME2(6) keeps the microseconds the others keep.
Timestamp = DateTime().with_variant(mssql.DATETIME2(precision=6), "mssql")  # type: ignore[no-untyped-call]


# What the reports read instead of hired_employees (see common/stores/hire_counts.py): hires
# per quarter, department and job, as a base the fold rewrites plus the changes each write
# appends in its own transaction. Appending only, writers never wait for one another here.
def _hire_count_columns() -> list[Column[Any]]:
    return [
        Column("hire_year", Integer, nullable=False),
        Column("hire_quarter", Integer, nullable=False),
        Column("department_id", Id, nullable=False),
        Column("job_id", Id, nullable=False),
        Column("hires", BigInteger, nullable=False),
    ]


hire_counts = Table(
    "hire_counts",
    metadata,
    *_hire_count_columns(),
    PrimaryKeyConstraint("hire_year", "hire_quarter", "department_id", "job_id"),
)

hire_count_changes = Table("hire_count_changes", metadata, *_hire_count_columns())


# The hire counts of a staged load's rows, each part's written with its last block (see
# common/stores/staged_counts.py); UNLOGGED on PostgreSQL, as the staged rows are.
stage_hire_counts = Table(
    "stage_hire_counts",
    metadata,
    Column("job_seq", Integer, nullable=False),
    *_hire_count_columns(),
    Index("ix_stage_hire_counts_job_seq", "job_seq"),
)


ingest_jobs = Table(
    "ingest_jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36), nullable=False, unique=True),
    Column("table_name", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("original_name", Unicode(255)),
    Column("blob_name", String(255), nullable=False),
    Column("on_conflict", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", UnicodeText),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
    # Set once the job's messages are on the queue; a job left without it was never announced.
    Column("sent_at", DateTime),
    # "table:sha256:on_conflict" while the job may be reused for identical content (not forced,
    # not failed or cancelled); unique, so concurrent identical uploads make exactly one job.
    Column("dedup_key", String(128)),
    # What a person should know about a job that did not fail, one sentence a line.
    Column("warnings", UnicodeText),
    # The load options (common/model/options.py) as JSON; empty for the default load.
    Column("options", String(400)),
    # Uploads sent together with ?atomic=true publish together: the request's id.
    Column("group_id", String(36)),
    # The job whose rejected rows this one loads again (POST /jobs/{id}/retry-rejected).
    Column("retry_of", String(36)),
    # A staged load's outcome at publish: rows inserted, rows that replaced others, and rows
    # rejected then (duplicates across the file, ids taken or references missing by then).
    Column("publish_inserted", BigInteger),
    Column("publish_updated", BigInteger),
    Column("publish_rejected", BigInteger),
    Index("ix_ingest_jobs_table_sha", "table_name", "content_sha256"),
    Index("ix_ingest_jobs_status_table", "status", "table_name"),
    Index("ix_ingest_jobs_group_id", "group_id"),
    Index("ix_ingest_jobs_retry_of", "retry_of"),
    Index(
        "ux_ingest_jobs_dedup_key",
        "dedup_key",
        unique=True,
        sqlite_where=text("dedup_key IS NOT NULL"),
        postgresql_where=text("dedup_key IS NOT NULL"),
        mssql_where=text("dedup_key IS NOT NULL"),
    ),
)

job_parts = Table(
    "job_parts",
    metadata,
    Column("job_id", String(36), ForeignKey("ingest_jobs.job_id"), nullable=False),
    Column("part_no", Integer, nullable=False),
    Column("start_offset", BigInteger, nullable=False),
    Column("end_offset", BigInteger, nullable=False),
    Column("first_line", BigInteger, nullable=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("next_line", BigInteger, nullable=False),
    Column("rows_read", BigInteger, nullable=False, default=0),
    Column("rows_inserted", BigInteger, nullable=False, default=0),
    Column("rows_updated", BigInteger, nullable=False, default=0),
    Column("rows_rejected", BigInteger, nullable=False, default=0),
    Column("status", String(16), nullable=False),
    Column("lease_owner", String(36)),
    Column("lease_until", DateTime),
    Column("updated_at", DateTime, nullable=False),
    PrimaryKeyConstraint("job_id", "part_no"),
)

# A rejection is its raw text and the codes of the rules it broke (``column:rule[:detail]``,
# see common/model/rules.py), keyed by its job and line: nothing else per row, so storage
# follows the input's size. Without a rowid, SQLite keeps each row in the key's own B-tree.
job_rejections = Table(
    "job_rejections",
    metadata,
    Column("line", BigInteger, nullable=False),
    Column("job_seq", Integer, nullable=False),
    Column("raw", UnicodeText, nullable=False),
    Column("rules", String(1000), nullable=False),
    PrimaryKeyConstraint("job_seq", "line"),
    sqlite_with_rowid=False,
)

# Every JSON batch, with its counts; its rejections by index in the request.
batches = Table(
    "batches",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(36), nullable=False),
    Column("table_name", String(64), nullable=False),
    Column("rows_inserted", Integer, nullable=False),
    Column("rows_updated", Integer, nullable=False),
    Column("rows_rejected", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("batch_id", name="uq_batches_batch_id"),
)

batch_rejections = Table(
    "batch_rejections",
    metadata,
    Column("idx", Integer, nullable=False),
    Column("batch_seq", Integer, nullable=False),
    Column("raw", UnicodeText, nullable=False),
    Column("rules", String(1000), nullable=False),
    PrimaryKeyConstraint("batch_seq", "idx"),
    sqlite_with_rowid=False,
)

queue_messages = Table(
    "queue_messages",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("queue", String(64), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("enqueued_at", DateTime, nullable=False),
    Column("visible_at", DateTime, nullable=False),
    Column("lock_token", String(36)),
    Column("locked_until", DateTime),
    Column("delivery_count", Integer, nullable=False, default=0),
    Column("dead_lettered", Boolean, nullable=False, default=False),
    Column("dead_letter_reason", UnicodeText),
    Column("dead_letter_description", UnicodeText),
    Column("dead_lettered_at", DateTime),
    Index("ix_queue_messages_ready", "queue", "dead_lettered", "visible_at"),
    # A sequence number is a dead letter's id: SQLite must not reuse one (see migration 0004).
    sqlite_autoincrement=True,
)

# A named lease: the holder (owner, until) alone runs a task that must run once per occasion
# across every worker; ``last_run`` is the occasion (a scheduled time) last completed.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(36)),
    Column("until", DateTime),
    Column("last_run", DateTime),
)

# Who is acting on a dead letter: the first resubmit or purge of an id inserts its row and wins;
# a concurrent or later one finds it and is refused. A "started" row older than a few minutes
# belongs to a request that died and may be taken over.
dead_letter_claims = Table(
    "dead_letter_claims",
    metadata,
    Column("dead_letter_id", String(64), primary_key=True),
    Column("action", String(16), nullable=False),
    Column("job_id", String(36)),
    Column("state", String(16), nullable=False),
    Column("claimed_at", DateTime, nullable=False),
)

# One row per data table. Loads and batches hold a shared lock on the rows of their table and
# its parents while they check ``restore_until``; a restore marks the rows of its tables (and
# locks them) so that no load starts and no batch writes while it runs.
table_gates = Table(
    "table_gates",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("restore_owner", String(36)),
    Column("restore_until", DateTime),
)
