"""Retry a finished job's rejected rows against the tables as they are now.

A retry is a new job (``retry_of`` names the first) that goes through the queue and the
workers like an upload, but reads its rows from the first job's stored rejections instead of a
file: each of its parts goes through the lines one part of the first job went through, a block
of stored lines at a time, so no process ever holds all the rejections. Its part offsets are
therefore line numbers, and its ``size_bytes`` the number of lines it goes through. Rows valid
now are written as a load's; the rest are rejected again under their original line numbers.

Only rejections that kept their line as it was are retried; the others (a line that is not
UTF-8 or too long, of which only a stand-in was kept) are counted in the new job's warnings.
The first job, its file and its rejections stay as they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc
import structlog

from common.errors import JobNotFinished, NothingToRetry, UnknownJob
from common.model.catalog import TableSpec
from common.model.jobs import Job
from common.model.options import LoadOptions
from common.model.rows import RawRows, ValidRows
from common.pipeline.blocks import Block
from common.pipeline.csvparse import parse_block
from common.pipeline.validation import validate
from common.queue import JobQueue
from common.stores.jobs import JobStore
from common.stores.rejections import RejectionStore
from common.stores.sends import JobSends
from common.usecases.submit import announce

log = structlog.get_logger("ingest.retry")

# Stored lines validated and written per transaction.
LINES_PER_BLOCK = 10_000


def retry_rejected(
    jobs: JobStore, sends: JobSends, queue: JobQueue, rejections: RejectionStore, job_id: str
) -> Job:
    """Create and queue the job that retries ``job_id``'s rejected rows; return it.

    Raises :class:`UnknownJob`, :class:`JobNotFinished` for a job that may still write, and
    :class:`NothingToRetry` for one without a rejection whose line was kept."""
    first = jobs.get(job_id)
    if not first.status.terminal:
        raise JobNotFinished(
            f"job {job_id} is {first.status.value}; retry its rejected rows once it has finished"
        )
    kept, stand_ins = rejections.retry_counts(first.seq)
    if not kept:
        raise NothingToRetry(
            f"job {job_id} has no rejected row to retry"
            + (f" ({stand_ins} rejected line(s) were not kept as they were)" if stand_ins else "")
        )
    parts = jobs.line_ranges(job_id)
    warnings = (
        (
            f"{stand_ins} rejected row(s) of job {job_id} were not retried: their line was not "
            "kept as it was (not UTF-8, or too long)",
        )
        if stand_ins
        else ()
    )
    job, _ = jobs.create(
        job_id=str(uuid.uuid4()),
        table=first.table,
        content_sha256=first.content_sha256,
        size_bytes=sum(p.end - p.start for p in parts),
        original_name=first.original_name,
        blob_name="",  # no file of its own: its rows are the first job's rejections
        on_conflict=first.on_conflict,
        parts=parts,
        reusable=False,
        warnings=warnings,
        options=_kept_options(first.options),
        retry_of=first.job_id,
    )
    announce(sends, queue, job)
    log.info("rejected rows retried", job_id=job.job_id, retry_of=job_id, rows=kept)
    return job


def _kept_options(options: LoadOptions) -> LoadOptions:
    """What still makes sense for the rejected rows alone: all or nothing, a dry run, and
    records that span lines. A write mode, thresholds and leading rows were about the whole
    file."""
    return LoadOptions(
        atomic=options.atomic,
        dry_run=options.dry_run,
        allow_quoted_newlines=options.allow_quoted_newlines,
    )


def retried_blocks(
    jobs: JobStore,
    rejections: RejectionStore,
    job: Job,
    spec: TableSpec,
    first: int,
    end: int,
) -> Iterator[tuple[Block, int, ValidRows]]:
    """The retry ``job``'s blocks from line ``first`` to line ``end - 1``, each with its
    first line and its rows validated. A block spans the lines its rows come from, so that a
    checkpoint at its end means the same as an upload's."""
    assert job.retry_of is not None
    try:
        seq = jobs.get(job.retry_of).seq
    except UnknownJob:
        raise UnknownJob(
            f"job {job.retry_of}, whose rejected rows job {job.job_id} retries, was deleted"
        ) from None
    line, limit = first, LINES_PER_BLOCK
    while line < end:
        page = rejections.lines_kept_whole(seq, line, end, limit)
        upto = page[-1][0] + 1 if len(page) == limit else end
        spanning = job.options.allow_quoted_newlines
        rows = _concat(spec, [_parsed(spec, run, spanning) for run in _runs(page)])
        yield Block(line, upto, b"", upto - line), line, validate(spec, rows, spanning)
        line = upto


def _runs(page: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """The stored records in order, those of one line together and each record of several
    lines (or with a quote left open) alone: parsed together, one could swallow the next."""
    run: list[tuple[int, str]] = []
    for stored in page:
        raw = stored[1]
        if "\n" in raw or "\r" in raw or raw.count('"') % 2:
            if run:
                yield run
            yield [stored]
            run = []
        else:
            run.append(stored)
    if run:
        yield run


def _parsed(spec: TableSpec, run: list[tuple[int, str]], spanning: bool) -> RawRows:
    """Stored records parsed as one block, each row numbered with its original line."""
    lines = [line for line, _ in run]
    data = "".join(f"{raw}\n" for _, raw in run).encode()
    # Numbered by position: a run of several records has one line each, a record of several
    # lines is alone and all its lines are its first's.
    rows = parse_block(data, 0, spec, at_file_start=False, quoted_newlines=spanning)
    if len(run) == 1:
        rows.line = pa.array([lines[0]] * len(rows.line), pa.int64())
        rows.rejected = [replace(r, line=lines[0]) for r in rows.rejected]
        return rows
    rows.line = pc.take(pa.array(lines, pa.int64()), rows.line)
    rows.rejected = [replace(r, line=lines[r.line]) for r in rows.rejected]
    return rows


def _concat(spec: TableSpec, parts: list[RawRows]) -> RawRows:
    if not parts:
        return RawRows.empty(spec.column_names)
    if len(parts) == 1:
        return parts[0]
    return RawRows(
        line=pa.concat_arrays([p.line for p in parts]),
        raw=pa.concat_arrays([p.raw for p in parts]),
        fields={n: pa.concat_arrays([p.fields[n] for p in parts]) for n in spec.column_names},
        rejected=[r for p in parts for r in p.rejected],
    )
