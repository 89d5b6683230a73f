"""The declared tables: what they hold, and batches of up to 1000 JSON rows inserted into one in
one transaction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ServicesDep
from api.problems import PROBLEM_RESPONSE, Problem
from api.routes.uploads import OnConflict
from api.schemas import BatchIn, BatchOut, BatchRejectedOut, RuleError
from api.security import ReadAccess, WriteAccess
from api.table_schemas import TableOut, TablesOut
from common.model.catalog import current, table_spec
from common.model.rows import Rejection
from common.stores.row_counts import row_counts
from common.usecases.insert_batch import insert_batch

router = APIRouter(tags=["tables"])


@router.get(
    "/tables",
    response_model=TablesOut,
    dependencies=[ReadAccess],
    summary="The declared tables, parents first: columns, key, CSV layout and row counts",
    responses={503: PROBLEM_RESPONSE},
)
def list_tables(services: ServicesDep) -> TablesOut:
    catalog = current()
    counts = row_counts(services.db, catalog.load_order)
    return TablesOut(
        tables=[TableOut.of(spec, counts[spec.name]) for spec in catalog.specs],
        reports=catalog.has_reports,
    )


@router.get(
    "/tables/{table}",
    response_model=TableOut,
    dependencies=[ReadAccess],
    summary="One declared table: its columns, key, CSV layout and row count",
    responses={404: PROBLEM_RESPONSE, 503: PROBLEM_RESPONSE},
)
def one_table(table: str, services: ServicesDep) -> TableOut:
    spec = table_spec(table)
    return TableOut.of(spec, row_counts(services.db, [spec.name])[spec.name])


@router.post(
    "/tables/{table}/rows",
    response_model=BatchOut,
    dependencies=[WriteAccess],
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
    atomic: Annotated[
        bool,
        Query(
            description="All or nothing: if any row is rejected, none is inserted and the "
            "answer is a 422 problem document listing every rejection under `rejected`."
        ),
    ] = False,
) -> BatchOut:
    result = insert_batch(
        services.db, services.request_retry, table, batch.rows, on_conflict, atomic
    )
    written = result.written
    rejected = [_rejected_out(batch.rows, r) for r in written.rejected]
    if result.refused:
        raise Problem(
            422,
            "Batch refused",
            f"{len(rejected)} of the {len(batch.rows)} rows were rejected; with atomic=true "
            "no row was inserted. Correct the rows listed under 'rejected' and send the batch "
            "again",
            batch_id=result.batch_id,
            rejected=[r.model_dump() for r in rejected],
        )
    return BatchOut(
        batch_id=result.batch_id,
        inserted=written.inserted,
        updated=written.updated,
        rejected=rejected,
    )


def _rejected_out(rows: list[dict[str, Any]], rejection: Rejection) -> BatchRejectedOut:
    return BatchRejectedOut(
        index=rejection.line,
        row=rows[rejection.line],
        errors=[RuleError(**e.as_dict()) for e in rejection.errors],
    )
