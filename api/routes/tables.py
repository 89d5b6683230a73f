"""Batches: insert up to 1000 JSON rows into a table in one transaction."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServicesDep
from api.problems import PROBLEM_RESPONSE
from api.routes.uploads import OnConflict
from api.schemas import BatchIn, BatchOut, BatchRejectedOut, RuleError
from api.security import WriteAccess
from common.usecases.insert_batch import insert_batch

router = APIRouter(tags=["tables"], dependencies=[WriteAccess])


@router.post(
    "/tables/{table}/rows",
    response_model=BatchOut,
    summary="Insert a batch of 1 to 1000 rows; invalid rows are rejected and logged",
    responses={
        404: PROBLEM_RESPONSE,
        409: PROBLEM_RESPONSE,
        413: PROBLEM_RESPONSE,
        422: PROBLEM_RESPONSE,
        503: PROBLEM_RESPONSE,
    },
)
def insert_rows(
    table: str,
    batch: BatchIn,
    services: ServicesDep,
    on_conflict: OnConflict = "reject",
) -> BatchOut:
    result = insert_batch(services.db, services.request_retry, table, batch.rows, on_conflict)
    written = result.written
    return BatchOut(
        batch_id=result.batch_id,
        inserted=written.inserted,
        updated=written.updated,
        rejected=[
            BatchRejectedOut(
                index=r.line,
                row=batch.rows[r.line],
                errors=[RuleError(**e.as_dict()) for e in r.errors],
            )
            for r in written.rejected
        ],
    )
