"""Jobs and their parts, as the rest of the code sees them.

A job is one uploaded file; a part is a byte range of it, cut at a newline, that one worker
ingests. Statuses live here and nowhere else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from common.model.options import LoadOptions


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the job is over: nothing of it will run again unless it is replayed."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


UNFINISHED = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class PartStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PartPlan:
    """A byte range ``[start, end)`` of the file whose first line is line ``first_line``."""

    start: int
    end: int
    first_line: int


@dataclass(frozen=True)
class Job:
    job_id: str
    seq: int
    table: str
    status: JobStatus
    content_sha256: str
    size_bytes: int
    original_name: str | None
    blob_name: str
    on_conflict: str
    attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    parts: int
    parts_done: int
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_rejected: int
    bytes_done: int
    warnings: tuple[str, ...] = ()
    options: LoadOptions = field(default_factory=LoadOptions)
    group_id: str | None = None
    retry_of: str | None = None
    rows_staged: int = 0  # a staged load's valid rows waiting to be published
    published: bool = False


@dataclass(frozen=True)
class Part:
    job_id: str
    part_no: int
    start_offset: int
    end_offset: int
    next_offset: int
    next_line: int
    status: PartStatus


@dataclass(frozen=True)
class Progress:
    """What one committed batch adds to its part."""

    next_offset: int
    next_line: int
    rows_read: int
    rows_inserted: int
    rows_updated: int
    rows_rejected: int


@dataclass(frozen=True)
class Busy:
    """The part cannot be taken now; try again at ``until``."""

    until: datetime
    why: str


def dedup_key(
    table: str, content_sha256: str, on_conflict: str, options: LoadOptions | None = None
) -> str:
    """What makes two uploads the same load: the table, the bytes, the conflict rule and the
    load options."""
    key = f"{table}:{content_sha256}:{on_conflict}"
    fingerprint = options.fingerprint() if options is not None else ""
    if fingerprint:
        key += ":" + hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return key
