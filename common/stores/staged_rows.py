"""A staged load's rows at publish: checked against the whole file and today's tables, then
written to the table, in the publishing transaction.

A row rejected at publish is copied to the job's rejections and stays in staging: every
later step reads only the *publishable* rows, those of the job with no rejection at their
line, so no step has to delete from staging inside the transaction. The staged rows go
afterwards (:func:`common.stores.staging.discard`).

The checks are joins, not a subquery per row: the database can hash the parents and the
table once instead of probing them for each of a million staged rows.
"""

from __future__ import annotations

from itertools import combinations

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
)

from common.model.catalog import TableSpec, children_of, table_spec
from common.model.rows import FieldError
from common.model.rules import IN_INPUT, encode
from common.sql.catalog_tables import data_table, key_column, staging_table
from common.sql.db import COUNTED
from common.sql.schema import job_rejections
from common.stores import hire_counts, staged_counts

Check = tuple[str, ColumnElement[bool]]


def _code(column: str, rule: str, detail: str = "") -> str:
    return encode([FieldError(column, rule, "", detail)])


def _unrejected(st: Table) -> ColumnElement[bool]:
    return ~exists().where(
        job_rejections.c.job_seq == st.c.job_seq, job_rejections.c.line == st.c.line
    )


def publishable(spec: TableSpec, job_seq: int, checked: bool = True) -> ColumnElement[bool]:
    """The job's staged rows that no check rejected; all of them when no check rejected any
    (``checked`` false): staging keeps only rows without a rejection."""
    st = staging_table(spec.name)
    mine = st.c.job_seq == job_seq
    return and_(mine, _unrejected(st)) if checked else mine


def staged_count(conn: Connection, spec: TableSpec, job_seq: int) -> int:
    """How many rows the job has in staging."""
    st = staging_table(spec.name)
    count = select(func.count()).select_from(st).where(st.c.job_seq == job_seq)
    return int(conn.execute(count).scalar_one())


def reject_at_publish(
    conn: Connection, spec: TableSpec, job_seq: int, taken: bool, *, replace: bool = False
) -> int:
    """Store the rejections only the whole file and today's tables show: a later line of an id
    or of a unique value staged earlier; with ``taken``, an id the table holds; unless the file
    ``replace``s the table, a unique value another row of the table holds; a reference to an
    id its parent lacks. How many rows were rejected."""
    repeated = _reject_repeated(conn, spec, job_seq)
    for col in spec.columns:
        if col.unique and col is not spec.key:
            repeated += _reject_repeated(conn, spec, job_seq, col.name)
    return repeated + reject_unreferenced(conn, spec, job_seq, taken=taken, replace=replace)


def _reject_repeated(
    conn: Connection, spec: TableSpec, job_seq: int, column: str | None = None
) -> int:
    """Every line but the first of each id (or value of the unique ``column``) staged more
    than once: one grouping of the job's values finds the few repeated ones, then one join
    picks their later lines (those no earlier check rejected)."""
    st = staging_table(spec.name)
    name = column or spec.key.name
    repeated = (
        select(st.c[name].label("value"), func.min(st.c.line).label("first"))
        .where(st.c.job_seq == job_seq, st.c[name].is_not(None))
        .group_by(st.c[name])
        .having(func.count() > 1)
        .subquery("repeated")
    )
    rule = "duplicate_value" if column else "duplicate_id"
    input_twice = literal(_code(name, rule, IN_INPUT))
    later = (
        select(st.c.line, st.c.job_seq, st.c.raw, input_twice)
        .select_from(st.join(repeated, repeated.c.value == st.c[name]))
        .where(st.c.job_seq == job_seq, st.c.line > repeated.c.first, _unrejected(st))
    )
    return _store(conn, later)


def reject_unreferenced(
    conn: Connection, spec: TableSpec, job_seq: int, *, taken: bool, replace: bool = False
) -> int:
    """Store the rejections of the job's publishable rows whose reference to a parent finds
    no row there, with ``taken`` whose id the table holds already, and unless ``replace``
    whose unique value another row of the table holds; how many."""
    st = staging_table(spec.name)
    id_name = spec.key.name
    joined: FromClause = st
    checks: list[Check] = []
    if taken:
        live = data_table(spec.name).alias("live")
        joined = joined.outerjoin(live, key_column(live) == st.c[id_name])
        checks.append((_code(id_name, "duplicate_id"), key_column(live).is_not(None)))
    for col in spec.columns:
        if col.unique and col is not spec.key and not replace:
            holder = data_table(spec.name).alias(f"holder_{col.name}")
            held = and_(holder.c[col.name] == st.c[col.name], key_column(holder) != st.c[id_name])
            joined = joined.outerjoin(holder, held)
            checks.append((_code(col.name, "duplicate_value"), key_column(holder).is_not(None)))
        if col.references:
            parent = data_table(col.references).alias(f"parent_{col.name}")
            joined = joined.outerjoin(parent, key_column(parent) == st.c[col.name])
            missing = and_(key_column(parent).is_(None), st.c[col.name].is_not(None))
            checks.append((_code(col.name, "unknown_reference"), missing))
    if not checks:
        return 0
    broken = (
        select(st.c.line, st.c.job_seq, st.c.raw, _codes_of(checks))
        .select_from(joined)
        .where(publishable(spec, job_seq), or_(*(check for _, check in checks)))
    )
    return _store(conn, broken)


def _referenced(spec: TableSpec, st: Table) -> list[ColumnElement[bool]]:
    """Each reference of a staged row finds its parent."""
    found: list[ColumnElement[bool]] = []
    for col in spec.columns:
        if col.references:
            parent = data_table(col.references).alias(f"parent_{col.name}")
            there = exists().where(key_column(parent) == st.c[col.name])
            found.append(or_(st.c[col.name].is_(None), there))
    return found


def _codes_of(checks: list[Check]) -> ColumnElement[str]:
    """The codes of every failed check of a row, as one CASE over every combination (a row
    may break several rules at once, as in a plain load)."""
    branches = []
    for size in range(len(checks), 0, -1):
        for combo in combinations(range(len(checks)), size):
            holds = [checks[i][1] if i in combo else not_(checks[i][1]) for i in range(len(checks))]
            branches.append((and_(*holds), literal(";".join(checks[i][0] for i in combo))))
    return case(*branches)


def _store(conn: Connection, rows: Select[tuple[int, int, str, str]]) -> int:
    stored = conn.execute(
        insert(job_rejections).from_select(["line", "job_seq", "raw", "rules"], rows),
        execution_options=COUNTED,
    ).rowcount
    return int(stored)


def dangling_if_replaced(conn: Connection, spec: TableSpec, job_seq: int) -> str:
    """The rows of other tables whose references would break if the job's publishable rows
    replaced the table; empty when none would."""
    st = staging_table(spec.name)
    found = []
    for child_name in children_of(spec.name):
        child = data_table(child_name)
        for col in table_spec(child_name).columns:
            if col.references != spec.name:
                continue
            kept = exists().where(publishable(spec, job_seq), key_column(st) == child.c[col.name])
            count = conn.execute(select(func.count()).select_from(child).where(~kept)).scalar_one()
            if count:
                found.append(f"{count} {child_name} rows whose {col.name} is not an id in the file")
    return " and ".join(found)


def write_staged(
    conn: Connection,
    spec: TableSpec,
    job_seq: int,
    *,
    replace: bool,
    update: bool,
    checked: bool,
    referenced: bool,
) -> tuple[int, int]:
    """Put the job's publishable rows into the table (``replace`` empties it first; ``update``
    first deletes the rows they replace); (inserted, updated). ``checked``: whether the
    checks at publish rejected any staged row; ``referenced``: only the rows whose parents
    are there (unchecked, the caller compares the count with the rows staged)."""
    st = staging_table(spec.name)
    live = data_table(spec.name)
    mine = publishable(spec, job_seq, checked)
    if referenced:
        mine = and_(mine, *_referenced(spec, st))
    updated = 0
    if replace:
        hire_counts.delete_counted(conn, spec.name)
    elif update:
        replaced = key_column(live).in_(select(key_column(st)).where(mine))
        updated = hire_counts.delete_counted(conn, spec.name, replaced)
    names = list(spec.column_names)
    stored = conn.execute(
        insert(live).from_select(names, select(*(st.c[n] for n in names)).where(mine)),
        execution_options=COUNTED,
    ).rowcount
    rejected = ~_unrejected(st) if checked else None
    staged_counts.publish(conn, spec, job_seq, rejected)
    return int(stored) - int(updated), int(updated)
