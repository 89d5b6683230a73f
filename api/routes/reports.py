"""The two reports, as JSON or CSV."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import astuple, fields
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.csvout import SafeWriter
from api.deps import ServicesDep, wants_csv
from api.schemas import (
    DepartmentHiresRow,
    DepartmentsAboveMeanOut,
    HiresByQuarterOut,
    HiresByQuarterRow,
)
from api.security import ReadAccess
from common.reports import DepartmentHires, QuarterRow, departments_above_mean, hires_by_quarter

router = APIRouter(tags=["reports"], dependencies=[ReadAccess])
Year = Annotated[int, Query(ge=1, le=9998, description="Calendar year (UTC), e.g. 2021.")]
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


@router.get(
    "/reports/hires-by-quarter",
    response_model=HiresByQuarterOut,
    responses=_CSV,
    summary="Hires per department and job in each quarter of a year",
)
def hires_by_quarter_report(
    year: Year, request: Request, services: ServicesDep
) -> HiresByQuarterOut | Response:
    rows = hires_by_quarter(services.db, year)
    if wants_csv(request):
        columns = [f.name for f in fields(QuarterRow)]
        return _csv(rows, columns, f"hires-by-quarter-{year}.csv")
    return HiresByQuarterOut(year=year, rows=[HiresByQuarterRow(**r.__dict__) for r in rows])


@router.get(
    "/reports/departments-above-mean",
    response_model=DepartmentsAboveMeanOut,
    responses=_CSV,
    summary="Departments that hired more than the mean of hires per department in a year",
)
def departments_above_mean_report(
    year: Year, request: Request, services: ServicesDep
) -> DepartmentsAboveMeanOut | Response:
    mean, rows = departments_above_mean(services.db, year)
    if wants_csv(request):
        columns = [f.name for f in fields(DepartmentHires)]
        return _csv(rows, columns, f"departments-above-mean-{year}.csv")
    return DepartmentsAboveMeanOut(
        year=year, mean=mean, rows=[DepartmentHiresRow(**r.__dict__) for r in rows]
    )
