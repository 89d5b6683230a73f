"""Batches: insert up to 1000 JSON rows into a table in one transaction."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import ServicesDep
from api.problems import PROBLEM_RESPONSE
from api.routes.uploads import OnConflict
from api.schemas import BatchIn, BatchOut, BatchRejectedOut, RuleError
from api.security import WriteAccess
from common.errors import TableBusy
from common.model.catalog import table_spec
from common.pipeline.jsonrows import rows_from_json
from common.pipeline.validation import validate
from common.stores.gates import TableGates
from common.stores.rejections import log_rejections
from common.stores.writes import Committed, write_rows

router = APIRouter(tags=["tables"], dependencies=[WriteAccess])


def _restoring(tables: list[str]) -> TableBusy:
    return TableBusy(
        f"a restore of {', '.join(tables)} is in progress; send the batch again once it is done",
        tables=tables,
    )


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
    spec = table_spec(table)
    batch_id = str(uuid.uuid4())
    rows = validate(spec, rows_from_json(spec, batch.rows))

    gated = (spec.name, *spec.parents)
    gates = TableGates(services.db)
    if marked := gates.marked(gated):
        raise _restoring(marked)

    def transaction() -> Committed:
        with services.db.write() as conn:
            if gates.hold(conn, gated) is not None:
                raise _restoring(gates.marked(gated))
            return write_rows(conn, spec, rows, on_conflict, batch_id=batch_id)

    committed = services.request_retry.call(transaction)
    log_rejections(committed.rejected, batch_id=batch_id, table=table)
    return BatchOut(
        batch_id=batch_id,
        inserted=committed.inserted,
        updated=committed.updated,
        rejected=[
            BatchRejectedOut(
                index=r.line,
                row=batch.rows[r.line],
                errors=[RuleError(**e.as_dict()) for e in r.errors],
            )
            for r in committed.rejected
        ],
    )
