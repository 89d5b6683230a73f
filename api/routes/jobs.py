"""Jobs: status, progress and the rejected rows of each."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import PagingDep, ServicesDep, wants_csv
from api.problems import PROBLEM_RESPONSE
from api.schemas import JobOut, Page, RejectedRowOut, RuleError
from api.security import ReadAccess
from common.bootstrap import Services
from common.rejections import StoredRejection
from common.tables import table_spec

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
    status: Annotated[Literal["queued", "running", "succeeded", "failed"] | None, Query()] = None,
    table: Annotated[str | None, Query(max_length=64)] = None,
    id_prefix: Annotated[
        str | None, Query(max_length=36, description="Only jobs whose id starts with this.")
    ] = None,
) -> Page[JobOut]:
    if table is not None:
        table_spec(table)  # an unknown table is a 404 naming the tables, not an empty page
    items, total = services.jobs.page(paging.limit, paging.offset, status, table, id_prefix)
    return Page(
        items=[JobOut.of(j) for j in items], total=total, limit=paging.limit, offset=paging.offset
    )


@router.get("/jobs/{job_id}", response_model=JobOut, responses={404: PROBLEM_RESPONSE})
def get_job(job_id: str, services: ServicesDep) -> JobOut:
    return JobOut.of(services.jobs.get(job_id))


def _row_out(r: StoredRejection) -> RejectedRowOut:
    return RejectedRowOut(
        line=r.line,
        raw=r.raw,
        errors=[RuleError(**e) for e in r.errors],
        created_at=r.created_at,
    )


def _csv_lines(services: Services, job_id: str) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "raw", "columns", "rules", "messages"])
    offset = 0
    while True:
        rows, _ = services.rejections.page(_CSV_PAGE, offset, job_id=job_id)
        for r in rows:
            writer.writerow(
                [
                    r.line,
                    r.raw,
                    "; ".join(e["column"] for e in r.errors),
                    "; ".join(e["rule"] for e in r.errors),
                    "; ".join(e["message"] for e in r.errors),
                ]
            )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(rows) < _CSV_PAGE:
            return
        offset += _CSV_PAGE


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
    await run_in_threadpool(services.jobs.get, job_id)
    if wants_csv(request):
        return StreamingResponse(
            _csv_lines(services, job_id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="rejected-{job_id}.csv"'},
        )
    rows, total = await run_in_threadpool(
        services.rejections.page, paging.limit, paging.offset, job_id=job_id
    )
    return Page(
        items=[_row_out(r) for r in rows], total=total, limit=paging.limit, offset=paging.offset
    )
