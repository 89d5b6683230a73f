"""Write validated rows with the database's own bulk path, after set-based checks.

For a block of rows, one query per referenced table and one for the target fetch, among the
block's ids, those that exist; Arrow then splits the block into refused rows (duplicate id,
unknown reference) and rows to insert, which go in with ``COPY`` (PostgreSQL), one
``executemany`` (SQLite) or ``fast_executemany`` (SQL Server). A concurrent writer inserting the
same id between check and insert makes the insert fail on the primary key; the transaction
rolls back and is retried, and the retry sees the row. Everything runs in the caller's
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from common.errors import PermanentError
from common.model.catalog import TableSpec
from common.model.rows import FieldError, Rejection, ValidRows
from common.model.rules import broken
from common.sql.bulk import bulk_insert, existing_among, id_in, ids_parameter
from common.stores import hire_counts

ON_CONFLICT_REJECT = "reject"
ON_CONFLICT_UPDATE = "update"


@dataclass(frozen=True)
class Loaded:
    inserted: int
    updated: int
    rejected: list[Rejection]


def load_rows(
    conn: Connection, spec: TableSpec, rows: ValidRows, on_conflict: str = ON_CONFLICT_REJECT
) -> Loaded:
    """Insert ``rows.table`` into ``spec``'s table; return counts and the rows refused.

    With ``on_conflict="update"`` a row whose id exists replaces it (delete and insert in the
    same transaction) instead of being refused.
    """
    table = rows.table
    if table.num_rows == 0:
        return Loaded(0, 0, [])
    id_col = spec.key.name
    ids = table.column(id_col).combine_chunks()

    errors: dict[str, pa.Array] = {}
    for col in spec.columns:
        if col.references:
            values = table.column(col.name).combine_chunks()
            errors[col.name] = pc.invert(
                pc.is_in(values, value_set=existing_among(conn, col.references, values))
            )
    refused_mask = pa.array([False] * table.num_rows)
    for mask in errors.values():
        refused_mask = pc.or_(refused_mask, mask)
    present = pc.is_in(ids, value_set=existing_among(conn, spec.name, ids))
    updated = 0
    if on_conflict == ON_CONFLICT_UPDATE:
        replace = pc.and_not(present, refused_mask)
        if pc.any(replace).as_py():
            dialect = conn.dialect.name
            replaced = {"ids": ids_parameter(dialect, ids.filter(replace).to_pylist())}
            updated = hire_counts.delete_counted(
                conn, spec.name, id_in(spec.name, dialect), replaced
            )
    else:
        errors[id_col] = present
        refused_mask = pc.or_(refused_mask, present)

    to_insert = table.filter(pc.invert(refused_mask)).drop_columns(["line", "raw"])
    stored = bulk_insert(conn, spec.name, to_insert)
    if stored != to_insert.num_rows:
        # Every row handed to the bulk path must be there; anything else would lose rows.
        raise PermanentError(
            f"the database stored {stored} of {to_insert.num_rows} rows; the block was rolled back"
        )
    hire_counts.add_rows(conn, spec.name, to_insert)
    return Loaded(stored - updated, updated, _refusals(spec, table, errors, refused_mask))


def _refusals(
    spec: TableSpec, table: pa.Table, errors: dict[str, pa.Array], refused_mask: pa.Array
) -> list[Rejection]:
    if not pc.any(refused_mask).as_py():
        return []
    refused = table.filter(refused_mask)
    masks = {name: mask.filter(refused_mask).to_pylist() for name, mask in errors.items()}
    values = {name: refused.column(name).to_pylist() for name in errors}
    id_col = spec.key.name
    out: list[Rejection] = []
    for i, (line, raw) in enumerate(
        zip(refused.column("line").to_pylist(), refused.column("raw").to_pylist(), strict=True)
    ):
        found: list[FieldError] = []
        for col in spec.columns:
            if col.name not in masks or not masks[col.name][i]:
                continue
            rule = "duplicate_id" if col.name == id_col else "unknown_reference"
            found.append(broken(spec, col.name, rule, value=values[col.name][i]))
        out.append(Rejection(line, raw, tuple(found)))
    return out
