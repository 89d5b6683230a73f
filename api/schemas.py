"""Request and response models: what the API promises, with its limits."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, Field, field_validator

from common.model.jobs import Job, JobStatus

T = TypeVar("T")
MAX_BATCH_ROWS = 1000


def _in_utc(value: datetime) -> datetime:
    """The database keeps UTC without a zone; an RFC 3339 date-time must say which it is."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_in_utc)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Items matching the query, across all pages.")
    limit: int
    offset: int


class JobOut(BaseModel):
    job_id: str
    table: str
    status: JobStatus
    original_name: str | None
    content_sha256: str
    size_bytes: int = Field(
        description="The file's size; for a retry of rejected rows (retry_of), the number of "
        "lines of the first job it goes through."
    )
    bytes_done: int = Field(
        description="How much of size_bytes was gone through (bytes, or lines for a retry)."
    )
    parts: int
    parts_done: int
    rows_read: int
    rows_inserted: int
    rows_updated: int = Field(
        description="Rows that replaced an existing row (on_conflict=update)."
    )
    rows_rejected: int
    attempts: int
    on_conflict: str
    error: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    updated_at: UtcDatetime
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The load options the job runs with, where they differ from the default.",
    )
    dry_run: bool = Field(
        default=False, description="A dry run: validated against today's tables, nothing written."
    )
    rows_staged: int = Field(
        default=0,
        description="A staged load's valid rows waiting to be published (atomic, thresholds, "
        "write=replace or empty, dry runs).",
    )
    retry_of: str | None = Field(
        default=None, description="The job whose rejected rows this one loads again."
    )
    retried_by: list[str] = Field(
        default_factory=list,
        description="The jobs that load this one's rejected rows again, oldest first.",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="What to know about a job that did not fail (an empty file, a header row).",
    )
    waiting_for: list[str] = Field(
        default_factory=list,
        description="Earlier unfinished uploads of the tables this one references; it starts "
        "once they have finished.",
    )

    @classmethod
    def of(
        cls, job: Job, waiting_for: list[str] | None = None, retried_by: list[str] | None = None
    ) -> JobOut:
        return cls(
            job_id=job.job_id,
            table=job.table,
            status=job.status,
            original_name=job.original_name,
            content_sha256=job.content_sha256,
            size_bytes=job.size_bytes,
            bytes_done=job.bytes_done,
            parts=job.parts,
            parts_done=job.parts_done,
            rows_read=job.rows_read,
            rows_inserted=job.rows_inserted,
            rows_updated=job.rows_updated,
            rows_rejected=job.rows_rejected,
            attempts=job.attempts,
            on_conflict=job.on_conflict,
            error=job.error,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
            options=orjson.loads(job.options.as_json()),
            dry_run=job.options.dry_run,
            rows_staged=job.rows_staged,
            retry_of=job.retry_of,
            retried_by=retried_by or [],
            warnings=list(job.warnings),
            waiting_for=waiting_for or [],
        )


class UploadsOut(BaseModel):
    jobs: list[JobOut]


class RuleError(BaseModel):
    column: str
    rule: str
    message: str


class RejectedRowOut(BaseModel):
    line: int = Field(description="1-based line of the file (uploads) or index in the batch.")
    raw: str
    errors: list[RuleError]


def _unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored, if it holds what JSON should not: a lone UTF-16
    surrogate (``"\\ud800"``), which is not Unicode text, or ``NaN``/``Infinity``, which
    Python's parser accepts although they are not JSON."""
    pending = [value]
    while pending:  # no recursion: the nesting is the client's to choose
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return (
                    "a lone surrogate escape (\\ud800 to \\udfff), which is not Unicode "
                    "text; send the text as valid UTF-8"
                )
        elif isinstance(item, float) and not math.isfinite(item):
            spelled = "NaN" if math.isnan(item) else ("-Infinity" if item < 0 else "Infinity")
            return f"{spelled}, which is not a JSON number; send a finite number"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


class BatchIn(BaseModel):
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH_ROWS)

    @field_validator("rows")
    @classmethod
    def _only_storable_values(cls, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if _all_storable(rows):
            return rows
        for i, row in enumerate(rows):
            why = _unstorable(row)
            if why is not None:
                raise ValueError(f"row {i} holds {why}")
        return rows


def _all_storable(rows: list[dict[str, Any]]) -> bool:
    """Whether every row is plainly storable, the usual case checked at once: rows of text,
    integers, booleans and nulls whose texts, joined, encode as UTF-8 (a lone surrogate
    would not). False means "look row by row" (:func:`_unstorable`), not "unstorable"."""
    texts: list[str] = []
    for row in rows:
        for key, value in row.items():
            texts.append(key)
            kind = type(value)
            if kind is str:
                texts.append(value)
            elif not (kind is int or kind is bool or value is None):
                return False
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class BatchRejectedOut(BaseModel):
    index: int = Field(description="0-based position of the row in the request.")
    row: dict[str, Any]
    errors: list[RuleError]


class BatchOut(BaseModel):
    batch_id: str
    inserted: int
    updated: int
    rejected: list[BatchRejectedOut]


class HiresByQuarterRow(BaseModel):
    department: str
    job: str
    Q1: int
    Q2: int
    Q3: int
    Q4: int


class HiresByQuarterOut(BaseModel):
    year: int
    rows: list[HiresByQuarterRow]


class DepartmentHiresRow(BaseModel):
    id: int
    department: str
    hired: int


class DepartmentsAboveMeanOut(BaseModel):
    year: int
    mean: float
    rows: list[DepartmentHiresRow]


class SummaryDifferenceOut(BaseModel):
    year: int
    quarter: int
    department_id: int
    job_id: int
    summary: int = Field(description="Hires the reports' summary holds for this key.")
    recount: int = Field(description="Hires counted in hired_employees.")


class SummaryCheckOut(BaseModel):
    matches: bool = Field(description="Whether the summary equals the recount, key by key.")
    keys: int = Field(description="Keys (year, quarter, department, job) with hires.")
    hires: int = Field(description="Rows of hired_employees counted.")
    differing: int = Field(description="Keys whose counts differed.")
    differences: list[SummaryDifferenceOut] = Field(
        description="The first 100 differing keys, in key order."
    )
    repaired: bool = Field(description="Whether the differences were corrected.")


class DeadLetterOut(BaseModel):
    id: str
    job_id: str | None
    part: int | None
    message_id: str
    reason: str
    description: str
    delivery_count: int
    enqueued_at: UtcDatetime
    dead_lettered_at: UtcDatetime | None


class HealthOut(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
