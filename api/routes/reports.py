"""The two reports, as JSON or CSV, served when the catalog declares the tables they read."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import astuple, fields
from typing import Annotated, Any, NoReturn

import orjson
from fastapi import APIRouter, Query, Request, Response

from api.csvout import SafeWriter
from api.deps import ServicesDep, wants_csv
from api.problems import Problem
from api.schemas import (
    DepartmentsAboveMeanOut,
    HiresByQuarterOut,
    SummaryCheckOut,
    SummaryDifferenceOut,
)
from api.security import AdminAccess, ReadAccess
from common.stores.reports import (
    DepartmentHires,
    QuarterRow,
    departments_above_mean,
    hires_by_quarter,
    report_year,
)
from common.usecases.summary import check_summary

router = APIRouter(tags=["reports"], dependencies=[ReadAccess])
# Served instead of ``router`` when the catalog lacks the tables: a problem that says why.
absent = APIRouter(include_in_schema=False)
Year = Annotated[
    int | None,
    Query(
        ge=1,
        le=9998,
        description="Calendar year (UTC), e.g. 2021; by default the latest year with hires. "
        "The answer says which year it is about.",
    ),
]
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def _csv(rows: Sequence[Any], columns: list[str], filename: str) -> Response:
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(columns)
    writer.writerows(astuple(r) for r in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _json(answer: dict[str, Any]) -> Response:
    """``answer`` as JSON, its rows written straight from the report's dataclasses, whose
    fields are those of the ``response_model`` (a unit test keeps them so): the bytes a
    model per row would give, without building, validating and dumping 2,000 models."""
    return Response(orjson.dumps(answer), media_type="application/json")


@router.get(
    "/reports/hires-by-quarter",
    response_model=HiresByQuarterOut,
    responses=_CSV,
    summary="Hires per department and job in each quarter of a year",
    description="Rows are ordered by department name, then job name, ignoring case and accents "
    "(then by exact name and id), the same on every database.",
)
def hires_by_quarter_report(request: Request, services: ServicesDep, year: Year = None) -> Response:
    year = report_year(services.db, year)
    rows = hires_by_quarter(services.db, year)
    if wants_csv(request):
        columns = [f.name for f in fields(QuarterRow)]
        return _csv(rows, columns, f"hires-by-quarter-{year}.csv")
    return _json({"year": year, "rows": rows})


@router.get(
    "/reports/departments-above-mean",
    response_model=DepartmentsAboveMeanOut,
    responses=_CSV,
    summary="Departments that hired more than the mean of hires per department in a year",
    description="Rows are ordered by hires, most first, then by department id.",
)
def departments_above_mean_report(
    request: Request, services: ServicesDep, year: Year = None
) -> Response:
    year = report_year(services.db, year)
    mean, rows = departments_above_mean(services.db, year)
    if wants_csv(request):
        columns = [f.name for f in fields(DepartmentHires)]
        return _csv(rows, columns, f"departments-above-mean-{year}.csv")
    return _json({"year": year, "mean": mean, "rows": rows})


@router.post(
    "/reports/verify",
    response_model=SummaryCheckOut,
    dependencies=[AdminAccess],
    summary="Recount hires and compare with the reports' summary; repair it if asked",
    description="Counts hired_employees by year, quarter, department and job and compares "
    "each count with the summary the reports read, in one snapshot of both. With "
    "`repair=true` the differences are corrected in the same transaction.",
)
def verify_summary(
    services: ServicesDep,
    repair: Annotated[bool, Query(description="Correct the differences found.")] = False,
) -> SummaryCheckOut:
    check = check_summary(services.db, repair=repair)
    return SummaryCheckOut(
        matches=check.matches,
        keys=check.keys,
        hires=check.hires,
        differing=check.differing,
        differences=[
            SummaryDifferenceOut(
                year=d.hire_year,
                quarter=d.hire_quarter,
                department_id=d.department_id,
                job_id=d.job_id,
                summary=d.summary,
                recount=d.recount,
            )
            for d in check.differences
        ],
        repaired=check.repaired,
    )


@absent.api_route("/reports/{path:path}", methods=["GET", "POST"], response_model=None)
def no_reports(path: str) -> NoReturn:
    raise Problem(
        404,
        "No reports",
        "the reports count hires from departments, jobs and hired_employees, which the catalog "
        "this service runs with does not declare",
    )
