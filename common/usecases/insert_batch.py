"""Insert a JSON batch of rows into a table, in one transaction, beside any loads of it.

The rows are validated like a file's; valid ones are inserted (or replace existing ones with
``on_conflict="update"``), the rest are rejected with their reasons and stored with the batch.
A batch stays away from a restore of its table or of a table it references (see
:mod:`common.stores.gates`): it is refused while one runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import TableBusy
from common.model.catalog import table_spec
from common.pipeline.jsonrows import rows_from_json
from common.pipeline.validation import validate
from common.retry import RetryPolicy
from common.sql.db import Database
from common.stores.gates import TableGates
from common.stores.rejections import log_rejections
from common.stores.writes import Written, write_rows


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    written: Written


def _restoring(tables: list[str]) -> TableBusy:
    return TableBusy(
        f"a restore of {', '.join(tables)} is in progress; send the batch again once it is done",
        tables=tables,
    )


def insert_batch(
    db: Database,
    retry: RetryPolicy,
    table: str,
    rows: Sequence[dict[str, Any]],
    on_conflict: str,
) -> BatchResult:
    """Insert ``rows`` (each a JSON object) into ``table``; what was inserted, updated and
    rejected (rejections by their index in ``rows``)."""
    spec = table_spec(table)
    batch_id = str(uuid.uuid4())
    validated = validate(spec, rows_from_json(spec, rows))
    gated = (spec.name, *spec.parents)
    gates = TableGates(db)
    if marked := gates.marked(gated):
        raise _restoring(marked)

    def transaction() -> Written:
        with db.write() as conn:
            if gates.hold(conn, gated) is not None:
                raise _restoring(gates.marked(gated))
            return write_rows(conn, spec, validated, on_conflict, batch_id=batch_id)

    written = retry.call(transaction)
    log_rejections(written.rejected, batch_id=batch_id, table=table)
    return BatchResult(batch_id, written)
