"""Insert a JSON batch of rows into a table, in one transaction, beside any loads of it.

The rows are validated like a file's; valid ones are inserted (or replace existing ones with
``on_conflict="update"``), the rest are rejected with their reasons and stored with the batch.
An ``atomic`` batch with any rejection inserts nothing: the check and the insert share one
transaction, rolled back as a whole, so a row another writer inserts meanwhile is seen either
way; its rejections are still stored with the batch.
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
from common.stores.rejections import log_rejections, record_batch
from common.stores.writes import Written, write_rows


@dataclass(frozen=True)
class BatchResult:
    batch_id: str
    written: Written
    refused: bool = False  # atomic, and some row was rejected: nothing was written


class _Refused(Exception):
    def __init__(self, written: Written) -> None:
        super().__init__("an atomic batch had rejected rows")
        self.written = written


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
    atomic: bool = False,
) -> BatchResult:
    """Insert ``rows`` (each a JSON object) into ``table``; what was inserted, updated and
    rejected (rejections by their index in ``rows``). With ``atomic``, any rejection refuses
    the whole batch."""
    spec = table_spec(table)
    batch_id = str(uuid.uuid4())
    validated = validate(spec, rows_from_json(spec, rows))
    gated = (spec.name, *spec.parents)
    gates = TableGates(db)
    if db.dialect == "sqlite" and (marked := gates.marked(gated)):
        # SQLite's write transaction starts by waiting for the one writer, a restore perhaps.
        raise _restoring(marked)

    def transaction() -> Written:
        with db.write() as conn:
            # Elsewhere the look comes first in the transaction: one statement, not one more
            # transaction per batch. Unlocked, it does not wait behind a restore's own lock.
            if marked := gates.marked(gated, conn):
                raise _restoring(marked)
            if gates.hold(conn, gated) is not None:
                raise _restoring(gates.marked(gated, conn))
            written = write_rows(conn, spec, validated, on_conflict, batch_id=batch_id)
            if atomic and written.rejected:
                raise _Refused(written)
            return written

    try:
        written = retry.call(transaction)
    except _Refused as refused:
        rejected = refused.written.rejected
        written = Written(refused.written.read, 0, 0, rejected)

        def record() -> None:
            with db.write() as conn:
                record_batch(conn, batch_id, spec.name, 0, 0, rejected)

        retry.call(record)
        log_rejections(rejected, batch_id=batch_id, table=table, atomic=True)
        return BatchResult(batch_id, written, refused=True)
    log_rejections(written.rejected, batch_id=batch_id, table=table)
    return BatchResult(batch_id, written)
