"""Reading jobs and parts: one query joins a job to the totals of its parts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select

from common.model.jobs import Job, JobStatus, Part, PartStatus
from common.model.options import LoadOptions
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t

_part_totals = (
    select(
        parts_t.c.job_id.label("p_job_id"),
        func.count().label("parts"),
        func.sum(case((parts_t.c.status == PartStatus.DONE.value, 1), else_=0)).label("parts_done"),
        func.sum(parts_t.c.rows_read).label("rows_read"),
        func.sum(parts_t.c.rows_inserted).label("rows_inserted"),
        func.sum(parts_t.c.rows_updated).label("rows_updated"),
        func.sum(parts_t.c.rows_rejected).label("rows_rejected"),
        func.sum(parts_t.c.next_offset - parts_t.c.start_offset).label("bytes_done"),
    )
    .group_by(parts_t.c.job_id)
    .subquery()
)


def job_query() -> Any:
    return select(jobs_t, _part_totals).join(
        _part_totals, _part_totals.c.p_job_id == jobs_t.c.job_id, isouter=True
    )


def job_from_row(row: Any) -> Job:
    m = row._mapping
    options = LoadOptions.from_json(m["options"])
    written = int(m["rows_inserted"] or 0), int(m["rows_updated"] or 0)
    staged = 0
    if options.staged:
        # A staged load's parts count the rows they staged; the table got what publishing did.
        staged, written = (
            written[0],
            (int(m["publish_inserted"] or 0), int(m["publish_updated"] or 0)),
        )
    return Job(
        job_id=m["job_id"],
        seq=m["seq"],
        table=m["table_name"],
        status=JobStatus(m["status"]),
        content_sha256=m["content_sha256"],
        size_bytes=m["size_bytes"],
        original_name=m["original_name"],
        blob_name=m["blob_name"],
        on_conflict=m["on_conflict"],
        attempts=m["attempts"],
        error=m["error"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        updated_at=m["updated_at"],
        parts=int(m["parts"] or 0),
        parts_done=int(m["parts_done"] or 0),
        rows_read=int(m["rows_read"] or 0),
        rows_inserted=written[0],
        rows_updated=written[1],
        rows_rejected=int(m["rows_rejected"] or 0) + int(m["publish_rejected"] or 0),
        bytes_done=int(m["bytes_done"] or 0),
        warnings=tuple(m["warnings"].splitlines()) if m["warnings"] else (),
        options=options,
        group_id=m["group_id"],
        retry_of=m["retry_of"],
        rows_staged=staged,
        published=m["publish_inserted"] is not None,
    )


def part_from_row(row: Any) -> Part:
    return Part(
        row.job_id,
        row.part_no,
        row.start_offset,
        row.end_offset,
        row.next_offset,
        row.next_line,
        PartStatus(row.status),
    )
