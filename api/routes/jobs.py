"""Jobs: status, progress and the rejected rows of each."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.csvout import SafeWriter
from api.deps import PagingDep, ServicesDep, wants_csv
from api.problems import PROBLEM_RESPONSE
from api.schemas import JobOut, Page, RejectedRowOut, RuleError
from api.security import AdminAccess, ReadAccess, WriteAccess
from common.bootstrap import Services
from common.model.catalog import table_spec
from common.model.jobs import Job, JobStatus
from common.stores.rejections import StoredRejection
from common.usecases.retention import delete_job as remove_job
from common.usecases.retry_rejected import retry_rejected

router = APIRouter(tags=["jobs"], dependencies=[ReadAccess])
_CSV_PAGE = 5000


@router.get(
    "/jobs",
    response_model=Page[JobOut],
    responses={404: PROBLEM_RESPONSE},
    summary="List jobs, newest first",
)
def list_jobs(
    services: ServicesDep,
    paging: PagingDep,
    status: Annotated[JobStatus | None, Query()] = None,
    table: Annotated[str | None, Query(max_length=64)] = None,
    id_prefix: Annotated[
        str | None, Query(max_length=36, description="Only jobs whose id starts with this.")
    ] = None,
) -> Page[JobOut]:
    if table is not None:
        table_spec(table)  # an unknown table is a 404 naming the tables, not an empty page
    items, total = services.jobs.page(
        paging.limit, paging.offset, status.value if status else None, table, id_prefix
    )
    retries = services.jobs.retries_of([j.job_id for j in items])
    return Page(
        items=[_out(services, j, retries.get(j.job_id)) for j in items],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )


def _out(services: Services, job: Job, retried_by: list[str] | None = None) -> JobOut:
    waiting_for = services.jobs.waiting_for(job, table_spec(job.table).parents)
    return JobOut.of(job, waiting_for, retried_by)


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: PROBLEM_RESPONSE})
def get_job(job_id: str, services: ServicesDep) -> JobOut:
    job = services.jobs.get(job_id)
    return _out(services, job, services.jobs.retries_of([job_id]).get(job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses={404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE},
    dependencies=[AdminAccess],
    summary="Cancel a queued or running job; rows already committed stay",
)
def cancel_job(job_id: str, services: ServicesDep) -> JobOut:
    return _out(services, services.states.cancel(job_id, "cancelled by an operator"))


@router.post(
    "/jobs/{job_id}/retry-rejected",
    status_code=202,
    response_model=JobOut,
    responses={404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE},
    dependencies=[WriteAccess],
    summary="Load a finished job's rejected rows again, as a new job, against today's tables",
    description="The new job (`retry_of` names this one) goes through the queue like an "
    "upload: rows valid now are inserted with this job's on_conflict (and atomic or dry run "
    "if it had them); the rest are rejected again under their original line numbers. "
    "Rejected lines that were not kept as they were (not UTF-8, too long) are skipped and "
    "counted in the new job's warnings. `409` for a job that has not finished or has no "
    "rejected row to retry.",
)
def retry_rejected_rows(job_id: str, services: ServicesDep, response: Response) -> JobOut:
    job = retry_rejected(services.jobs, services.sends, services.queue, services.rejections, job_id)
    response.headers["Location"] = f"/jobs/{job.job_id}"
    return _out(services, job)


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    responses={404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE},
    dependencies=[AdminAccess],
    summary="Delete a finished job, its rejected rows and its uploaded file; loaded rows stay",
)
def delete_job(job_id: str, services: ServicesDep) -> Response:
    remove_job(services.jobs, services.uploads, job_id)
    return Response(status_code=204)


def _row_out(r: StoredRejection) -> RejectedRowOut:
    return RejectedRowOut(
        line=r.line,
        raw=r.raw,
        errors=[RuleError(**e.as_dict()) for e in r.errors],
    )


def _csv_lines(services: Services, job: Job) -> Iterator[str]:
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(["line", "raw", "columns", "rules", "messages"])
    spec = table_spec(job.table)
    line = 0
    while True:
        rows = services.rejections.after(spec, job.seq, line, _CSV_PAGE)
        for r in rows:
            writer.writerow(
                [
                    r.line,
                    r.raw,
                    "; ".join(e.column for e in r.errors),
                    "; ".join(e.rule for e in r.errors),
                    "; ".join(e.message for e in r.errors),
                ]
            )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < _CSV_PAGE:
            return
        line = rows[-1].line


@router.get(
    "/jobs/{job_id}/rejected-rows",
    response_model=Page[RejectedRowOut],
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        404: PROBLEM_RESPONSE,
    },
    summary="Rejected rows of a job, by line; CSV (all rows) with Accept: text/csv",
)
async def rejected_rows(
    job_id: str, request: Request, services: ServicesDep, paging: PagingDep
) -> Page[RejectedRowOut] | StreamingResponse:
    job = await run_in_threadpool(services.jobs.get, job_id)
    if wants_csv(request):
        return StreamingResponse(
            _csv_lines(services, job),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="rejected-{job_id}.csv"'},
        )
    rows, total = await run_in_threadpool(
        services.rejections.page, table_spec(job.table), job.seq, paging.limit, paging.offset
    )
    return Page(
        items=[_row_out(r) for r in rows], total=total, limit=paging.limit, offset=paging.offset
    )
