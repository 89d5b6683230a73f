"""Write validated rows with the database's own bulk path, after set-based checks.

For a block of rows, one query per referenced table and one for the target fetch, among the
block's ids, those that exist, and one per unique column the rows holding the block's values;
Arrow then splits the block into refused rows (duplicate id, unknown reference, a unique value
another row holds) and rows to insert, which go in with ``COPY`` (PostgreSQL), one
``executemany`` (SQLite) or ``fast_executemany`` (SQL Server). A concurrent writer inserting the
same id or unique value between check and insert makes the insert fail on the primary key or
the unique index (:class:`ConcurrentUpdate`); the transaction rolls back and is retried, and the
retry sees the row. Everything runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection

from common.errors import PermanentError
from common.model.catalog import TableSpec
from common.model.rows import Rejection, ValidRows
from common.model.rules import broken
from common.sql.bulk import bulk_insert, existing_among, holders_of, id_in, ids_parameter
from common.stores import hire_counts

ON_CONFLICT_REJECT = "reject"
ON_CONFLICT_UPDATE = "update"
DUPLICATE_ID = "duplicate_id"
DUPLICATE_VALUE = "duplicate_value"
UNKNOWN_REFERENCE = "unknown_reference"


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

    errors: dict[tuple[str, str], pa.Array] = {}
    for col in spec.columns:
        if col.references:
            values = table.column(col.name).combine_chunks()
            found = existing_among(conn, col.references, values)
            unknown = pc.invert(pc.is_in(values, value_set=found))
            errors[col.name, UNKNOWN_REFERENCE] = pc.and_(unknown, pc.is_valid(values))
        if col.unique and col.name != id_col:
            values = table.column(col.name).combine_chunks()
            if values.null_count < len(values):
                held = _held_by_others(conn, spec.name, col.name, ids, values)
                errors[col.name, DUPLICATE_VALUE] = held
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
        errors[id_col, DUPLICATE_ID] = present
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


def _held_by_others(
    conn: Connection, table: str, column: str, ids: pa.Array, values: pa.Array
) -> pa.Array:
    """Which rows' ``values`` of the unique ``column`` another row of ``table`` holds: a row
    may keep the value of the row with its own id, which it replaces."""
    wanted = pc.unique(values.drop_null())
    holder = pc.take(holders_of(conn, table, column, wanted), pc.index_in(values, wanted))
    return pc.fill_null(pc.not_equal(holder, ids), False)


def _refusals(
    spec: TableSpec,
    table: pa.Table,
    errors: dict[tuple[str, str], pa.Array],
    refused_mask: pa.Array,
) -> list[Rejection]:
    if not pc.any(refused_mask).as_py():
        return []
    refused = table.filter(refused_mask)
    masks = {found: mask.filter(refused_mask).to_pylist() for found, mask in errors.items()}
    values = {name: refused.column(name).to_pylist() for name, _ in errors}
    # In the order of the table's columns, as validation lists the rules it finds.
    order = sorted(masks, key=lambda found: spec.column_names.index(found[0]))
    out: list[Rejection] = []
    for i, (line, raw) in enumerate(
        zip(refused.column("line").to_pylist(), refused.column("raw").to_pylist(), strict=True)
    ):
        found = [
            broken(spec, name, rule, value=values[name][i])
            for name, rule in order
            if masks[name, rule][i]
        ]
        out.append(Rejection(line, raw, tuple(found)))
    return out
