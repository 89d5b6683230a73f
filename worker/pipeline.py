"""Ingest one part of one job: read → parse → validate → write, one transaction per block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from common.blocks import Block, line_blocks
from common.bootstrap import Services
from common.csvparse import check_is_text, parse_block
from common.db import utcnow
from common.errors import IngestError
from common.ingest import Committed, write_rows
from common.jobs import Busy, Job, JobStatus, Part, PartStatus, Progress
from common.messages import JobMessage
from common.prefetch import prefetched
from common.rejections import log_rejections
from common.rows import RawRows, Rejection, ValidRows
from common.rules import ROW, broken, looks_like_header
from common.tables import TableSpec, table_spec
from common.validation import validate

log = structlog.get_logger("ingest.worker")

_HEAD_BYTES = 64 * 1024
_LEASE_SHARE_OF_LOCK = 0.8
HEADER_ROW = "line 1 looks like a header row; it was rejected (the files have no header)"
# A job that inserted at least this many rows has the table's statistics refreshed after it.
REFRESH_AFTER_ROWS = 100_000


class Interrupted(IngestError):
    """The worker is shutting down; the part resumes from its checkpoint on the next delivery."""

    reason = "Interrupted"


@dataclass(frozen=True)
class Done:
    """The message's work is finished (or was already): complete it."""

    note: str


@dataclass(frozen=True)
class WaitUntil:
    """Not yet: send the message again for ``at`` and complete this delivery."""

    at: datetime
    why: str


Outcome = Done | WaitUntil


class PartIngestor:
    """Handles job messages for one worker process."""

    def __init__(self, services: Services, owner: str, stop: threading.Event) -> None:
        self.services = services
        self.owner = owner
        self.stop = stop
        self._leased: JobMessage | None = None

    @property
    def lease_seconds(self) -> float:
        # Shorter than the message lock: when a worker dies, its lease has lapsed by the time
        # the broker redelivers the message, so the redelivery (with its delivery count) takes
        # the part over instead of being rescheduled as a fresh message with a fresh count.
        return self.services.queue.lock_duration_seconds * _LEASE_SHARE_OF_LOCK

    def handle(self, message: JobMessage, delivery_count: int, cancel: threading.Event) -> Outcome:
        jobs = self.services.jobs
        job = jobs.get(message.job_id)
        spec = table_spec(job.table)
        structlog.contextvars.bind_contextvars(table=job.table)
        if job.status.terminal:
            return Done(f"job already {job.status.value}")
        waiting = jobs.waiting_for(job, spec.parents)
        if waiting:
            return WaitUntil(
                utcnow() + timedelta(seconds=self.services.settings.dependency_wait_seconds),
                f"waiting for {len(waiting)} earlier upload(s) of {' and '.join(spec.parents)}",
            )
        part = jobs.acquire(
            job.job_id,
            message.part,
            self.owner,
            self.lease_seconds,
            delivery_count,
            gated_tables=(spec.name, *spec.parents),
        )
        if isinstance(part, Busy):
            return WaitUntil(part.until + timedelta(seconds=1), part.why)
        if part.status is not PartStatus.PENDING:
            return Done(f"part already {part.status.value}")
        self._ingest(job, spec, part, cancel)
        self._refresh_if_finished(job.job_id)
        return Done("part ingested")

    def _refresh_if_finished(self, job_id: str) -> None:
        job = self.services.jobs.get(job_id)
        if job.status is JobStatus.SUCCEEDED and job.rows_inserted >= REFRESH_AFTER_ROWS:
            self.services.db.refresh_after_bulk_load(job.table)

    def renew_lease(self, message: JobMessage) -> bool:
        return self.services.jobs.renew(
            message.job_id, message.part, self.owner, self.lease_seconds
        )

    def release(self, message: JobMessage) -> None:
        self.services.jobs.release(message.job_id, message.part, self.owner)

    def _ingest(self, job: Job, spec: TableSpec, part: Part, cancel: threading.Event) -> None:
        blob = self.services.blob
        container = self.services.settings.blob_container_name_historic
        offset, line = part.next_offset, part.next_line
        if offset == 0 and part.end_offset > 0:
            check_is_text(b"".join(blob.read_range(container, job.blob_name, 0, _HEAD_BYTES)))
        log.info("part started", offset=offset, line=line, end=part.end_offset)
        if offset >= part.end_offset:
            empty = Block(offset, offset, b"", 0)
            self._commit(job, spec, part, empty, line, _validated(spec, empty, line))
            return
        with prefetched(self._validated_blocks(job, spec, offset, line, part.end_offset)) as blocks:
            for block, first_line, rows in blocks:
                if self.stop.is_set() or cancel.is_set():
                    raise Interrupted(f"stopped at byte {block.offset}, line {first_line}")
                self._commit(job, spec, part, block, first_line, rows)
                offset, line = block.end, first_line + block.lines
        log.info("part finished", offset=offset, line=line)

    def _validated_blocks(
        self, job: Job, spec: TableSpec, offset: int, line: int, end: int
    ) -> Iterator[tuple[Block, int, ValidRows]]:
        """Each block of the part with its first line number, parsed and validated."""
        chunks = self.services.blob.read_range(
            self.services.settings.blob_container_name_historic,
            job.blob_name,
            offset,
            end,
            chunk_size=self.services.settings.upload_block_bytes,
        )
        for block in line_blocks(chunks, offset, self.services.settings.chunk_bytes):
            yield block, line, _validated(spec, block, line)
            line += block.lines

    def _commit(
        self, job: Job, spec: TableSpec, part: Part, block: Block, line: int, rows: ValidRows
    ) -> None:
        jobs = self.services.jobs

        def transaction() -> Committed:
            with self.services.db.write() as conn:
                committed = write_rows(conn, spec, rows, job.on_conflict, job_seq=job.seq)
                progress = Progress(
                    next_offset=block.end,
                    next_line=line + block.lines,
                    rows_read=committed.read,
                    rows_inserted=committed.inserted,
                    rows_updated=committed.updated,
                    rows_rejected=len(committed.rejected),
                )
                if block.offset == 0 and any(
                    r.line == 1 and looks_like_header(spec, r.raw) for r in committed.rejected
                ):
                    jobs.warn(conn, job.job_id, HEADER_ROW)
                jobs.advance(conn, part, self.owner, block.offset, progress, self.lease_seconds)
            return committed

        committed = self.services.retry.call(transaction)
        log.info(
            "block committed",
            offset=block.offset,
            end=block.end,
            first_line=line,
            rows_read=committed.read,
            rows_inserted=committed.inserted,
            rows_updated=committed.updated,
            rows_rejected=len(committed.rejected),
        )
        log_rejections(committed.rejected, first_line=line)


def _validated(spec: TableSpec, block: Block, line: int) -> ValidRows:
    if block.oversized:
        raw = block.data.decode("utf-8", errors="backslashreplace")
        rejection = Rejection(
            line, raw, (broken(spec, ROW, "line_too_long", detail=block.end - block.offset),)
        )
        rows = RawRows.empty(spec.column_names)
        rows.rejected.append(rejection)
        return validate(spec, rows)
    return validate(spec, parse_block(block.data, line, spec, at_file_start=block.offset == 0))
