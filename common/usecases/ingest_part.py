"""Ingest one part of one job: read → parse → validate → write, one transaction per block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import structlog

from common.errors import Delivery, IngestError
from common.model.catalog import TableSpec, table_spec
from common.model.jobs import Busy, Job, JobStatus, Part, PartStatus, Progress
from common.model.messages import JobMessage
from common.model.options import LoadOptions
from common.model.outcomes import Done, Outcome, WaitUntil
from common.model.rows import RawRows, Rejection, ValidRows
from common.model.rules import ROW, broken, looks_like_header
from common.pipeline.blocks import Block, line_blocks
from common.pipeline.csvparse import check_is_text, parse_block, skip_leading
from common.pipeline.prefetch import prefetched
from common.pipeline.validation import validate
from common.retry import RetryPolicy
from common.settings import Settings
from common.sql.db import Database, utcnow
from common.stores.job_states import JobStates
from common.stores.jobs import JobStore
from common.stores.parts import PartLeases
from common.stores.rejections import RejectionStore, log_rejections
from common.stores.staged_counts import PartTally
from common.stores.uploads import UploadFiles
from common.stores.writes import Written, stage_rows, write_rows
from common.usecases.publish import Publisher
from common.usecases.retry_rejected import retried_blocks

log = structlog.get_logger("ingest.worker")

_HEAD_BYTES = 64 * 1024
_LEASE_SHARE_OF_LOCK = 0.8
HEADER_ROW = "line 1 looks like a header row; it was rejected (the files have no header)"
# A job that inserted at least this many rows has the table's statistics refreshed after it.
REFRESH_AFTER_ROWS = 100_000


class Interrupted(IngestError):
    """The worker is shutting down; the part resumes from its checkpoint on the next delivery."""

    reason = "Interrupted"
    delivery = Delivery.RESUME


@dataclass(frozen=True)
class IngestSettings:
    """What ingesting a part needs to know of the settings."""

    block_bytes: int  # bytes validated and committed per transaction
    read_bytes: int  # bytes read from the blob store at once
    dependency_wait_seconds: float  # how long a part waiting for its parents waits
    lease_seconds: float  # a part lease; shorter than the message lock (see ingestor_for)

    @classmethod
    def of(cls, settings: Settings, lock_duration_seconds: float) -> IngestSettings:
        return cls(
            block_bytes=settings.block_bytes,
            read_bytes=settings.blob_chunk_bytes,
            dependency_wait_seconds=settings.dependency_wait_seconds,
            # When a worker dies, its lease has lapsed by the time the broker redelivers the
            # message, so the redelivery (with its delivery count) takes the part over instead
            # of being rescheduled as a fresh message with a fresh count.
            lease_seconds=lock_duration_seconds * _LEASE_SHARE_OF_LOCK,
        )


class PartIngestor:
    """Ingests the part a job message names, for one worker (``owner``)."""

    def __init__(
        self,
        db: Database,
        jobs: JobStore,
        parts: PartLeases,
        states: JobStates,
        uploads: UploadFiles,
        retry: RetryPolicy,
        settings: IngestSettings,
        owner: str,
        stop: threading.Event,
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.parts = parts
        self.states = states
        self.publisher = Publisher(db, jobs, states)
        self.rejections = RejectionStore(db)
        self.uploads = uploads
        self.retry = retry
        self.settings = settings
        self.owner = owner
        self.stop = stop

    def handle(self, message: JobMessage, delivery_count: int, cancel: threading.Event) -> Outcome:
        job = self.jobs.get(message.job_id)
        spec = table_spec(job.table)
        structlog.contextvars.bind_contextvars(table=job.table)
        if job.status.terminal:
            return Done(f"job already {job.status.value}")
        if job.options.staged and job.parts_done == job.parts:
            return self._publish(job)  # staged by earlier deliveries, not yet published
        waiting = self.jobs.waiting_for(job, spec.parents)
        if waiting:
            return WaitUntil(
                utcnow() + timedelta(seconds=self.settings.dependency_wait_seconds),
                f"waiting for {len(waiting)} earlier upload(s) of {' and '.join(spec.parents)}",
            )
        part = self.parts.acquire(
            job.job_id,
            message.part,
            self.owner,
            self.settings.lease_seconds,
            delivery_count,
            gated_tables=(spec.name, *spec.parents),
        )
        if isinstance(part, Busy):
            return WaitUntil(part.until + timedelta(seconds=1), part.why)
        if part.status is not PartStatus.PENDING:
            return Done(f"part already {part.status.value}")
        self._ingest(job, spec, part, cancel)
        if job.options.staged:
            return self._publish(self.jobs.get(job.job_id))
        self._refresh_if_finished(job.job_id)
        return Done("part ingested")

    def _publish(self, job: Job) -> Outcome:
        if job.parts_done < job.parts and not job.status.terminal:
            return Done("part staged; the job's other parts are still staging")
        outcome = self.publisher.publish(job)
        if outcome.busy:
            at = utcnow() + timedelta(seconds=self.settings.dependency_wait_seconds)
            return WaitUntil(at, outcome.note)
        self._refresh_if_finished(job.job_id)
        return Done(outcome.note)

    def _refresh_if_finished(self, job_id: str) -> None:
        job = self.jobs.get(job_id)
        if job.status is JobStatus.SUCCEEDED and job.rows_inserted >= REFRESH_AFTER_ROWS:
            self.db.refresh_after_bulk_load(job.table)

    def renew_lease(self, message: JobMessage) -> bool:
        return self.parts.renew(
            message.job_id, message.part, self.owner, self.settings.lease_seconds
        )

    def release(self, message: JobMessage) -> None:
        self.parts.release(message.job_id, message.part, self.owner)

    def _ingest(self, job: Job, spec: TableSpec, part: Part, cancel: threading.Event) -> None:
        offset, line = part.next_offset, part.next_line
        if offset == 0 and part.end_offset > 0:
            head = self.uploads.read_range(job.blob_name, 0, _HEAD_BYTES)
            check_is_text(b"".join(head))
        log.info("part started", offset=offset, line=line, end=part.end_offset)
        tally = PartTally(spec, part, job.seq) if job.options.staged else None
        if offset >= part.end_offset:
            empty = Block(offset, offset, b"", 0)
            rows = _validated(spec, empty, line, job.options)
            self._commit(job, spec, part, empty, line, rows, tally)
            return
        with prefetched(self._validated_blocks(job, spec, offset, line, part.end_offset)) as blocks:
            for block, first_line, rows in blocks:
                if self.stop.is_set() or cancel.is_set():
                    raise Interrupted(f"stopped at byte {block.offset}, line {first_line}")
                self._commit(job, spec, part, block, first_line, rows, tally)
                offset, line = block.end, first_line + block.lines
        log.info("part finished", offset=offset, line=line)

    def _validated_blocks(
        self, job: Job, spec: TableSpec, offset: int, line: int, end: int
    ) -> Iterator[tuple[Block, int, ValidRows]]:
        """Each block of the part with its first line number, parsed and validated."""
        if job.retry_of is not None:  # its rows are another job's rejections, not a file
            yield from retried_blocks(self.jobs, self.rejections, job, spec, offset, end)
            return
        chunks = self.uploads.read_range(job.blob_name, offset, end, self.settings.read_bytes)
        quoted_newlines = job.options.allow_quoted_newlines
        for block in line_blocks(
            chunks, offset, self.settings.block_bytes, quoted_newlines=quoted_newlines
        ):
            yield block, line, _validated(spec, block, line, job.options)
            line += block.lines

    def _commit(
        self,
        job: Job,
        spec: TableSpec,
        part: Part,
        block: Block,
        line: int,
        rows: ValidRows,
        tally: PartTally | None,
    ) -> None:
        write = stage_rows if job.options.staged else write_rows

        def transaction() -> Written:
            with self.db.write() as conn:
                committed = write(conn, spec, rows, job.on_conflict, job_seq=job.seq)
                if tally is not None:  # a staged load's hire counts, with the part's last block
                    tally.stage(conn, rows.table, last=block.end >= part.end_offset)
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
                    self.jobs.warn(conn, job.job_id, HEADER_ROW)
                self.parts.advance(
                    conn, part, self.owner, block.offset, progress, self.settings.lease_seconds
                )
            return committed

        committed = self.retry.call(transaction)
        if tally is not None:
            tally.committed()
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
        if committed.rejected and job.options.max_bad_records is not None:
            self._fail_early(job)

    def _fail_early(self, job: Job) -> None:
        """A staged load over ``max_bad_records`` already can only end so: end it now."""
        now = self.jobs.get(job.job_id)
        if why := job.options.exceeded(now.rows_read, now.rows_rejected):
            self.states.fail(job.job_id, f"too_many_bad_records: {why}")
            log.warning("staged load failed early: too many bad records", error=why)
            self.publisher.publish(self.jobs.get(job.job_id))  # the rest of its upload fails too


def _validated(spec: TableSpec, block: Block, line: int, options: LoadOptions) -> ValidRows:
    quoted_newlines = options.allow_quoted_newlines
    if block.oversized:
        raw = block.data.decode("utf-8", errors="backslashreplace")
        rejection = Rejection(
            line, raw, (broken(spec, ROW, "line_too_long", detail=block.end - block.offset),)
        )
        parsed = RawRows.empty(spec.column_names)
        parsed.rejected.append(rejection)
    else:
        parsed = parse_block(
            block.data, line, spec, at_file_start=block.offset == 0, quoted_newlines=quoted_newlines
        )
    return validate(spec, skip_leading(parsed, options.leading_rows(spec)), quoted_newlines)
