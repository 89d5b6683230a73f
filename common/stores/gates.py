"""Table gates: restores run alone against the loads and batches of the tables they rewrite.

A restore of a table conflicts with a load or batch of that table and of its children (their
rows reference its ids). Each data table has one row in ``table_gates``:

- a load taking its first part, and every batch, read the gates of its table and the table's
  parents under a shared row lock (``hold``) and stay away while a restore is marked there;
- a restore first marks its tables and their children (``mark``), so that no load starts
  meanwhile, then takes the rows exclusively (``seize``) in the transaction that rewrites the
  tables, which waits for the shared holders in flight, and clears the mark in that same
  transaction (``clear``).

Rows are locked in name order everywhere, so two restores cannot deadlock each other. SQLite
serialises every write transaction, which gives the same exclusion with no row locks.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, or_, select, update

from common.errors import ConcurrentUpdate, TableBusy
from common.sql.db import Database, utcnow
from common.sql.schema import table_gates as gates_t

# SQLAlchemy renders no row locks for SQL Server; these hints are its FOR SHARE.
_MSSQL_SHARED = "WITH (HOLDLOCK, ROWLOCK)"


class TableGates:
    """Marks and locks on the ``table_gates`` rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure(self, tables: Iterable[str]) -> None:
        """Give every table of ``tables`` its gate row; processes starting together may race to
        insert one, and the loser finds it there."""
        with self.db.read() as conn:
            present = set(conn.execute(select(gates_t.c.table_name)).scalars())
        for name in sorted(set(tables) - present):
            try:
                with self.db.write() as conn:
                    conn.execute(insert(gates_t).values(table_name=name))
            except ConcurrentUpdate:
                pass

    def hold(self, conn: Connection, tables: Iterable[str]) -> datetime | None:
        """Share-lock the gates of ``tables`` in the caller's transaction; return when a restore
        marked on any of them ends, or ``None`` when none is."""
        query = (
            select(gates_t.c.restore_until)
            .where(gates_t.c.table_name.in_(sorted(set(tables))))
            .order_by(gates_t.c.table_name)
            .with_for_update(read=True)
            .with_hint(gates_t, _MSSQL_SHARED, "mssql")
        )
        now = utcnow()
        ends = [until for until in conn.execute(query).scalars() if until and until > now]
        return max(ends) if ends else None

    def marked(self, tables: Iterable[str], conn: Connection | None = None) -> list[str]:
        """Which of ``tables`` a restore has marked, read without locking (a quick look before
        a lock that would otherwise wait behind the restore), in ``conn``'s transaction or a
        new one."""
        if conn is None:
            with self.db.read() as own:
                return self.marked(tables, own)
        query = select(gates_t.c.table_name).where(
            gates_t.c.table_name.in_(sorted(set(tables))), gates_t.c.restore_until > utcnow()
        )
        return list(conn.execute(query).scalars())

    def mark(self, tables: Iterable[str], owner: str, seconds: float) -> None:
        """Mark ``tables`` as being restored by ``owner`` for ``seconds`` (renewable); raise
        :class:`TableBusy` if another restore holds a live mark on one of them."""
        now = utcnow()
        with self.db.write() as conn:
            for name in sorted(set(tables)):
                taken = conn.execute(
                    update(gates_t)
                    .where(
                        gates_t.c.table_name == name,
                        or_(
                            gates_t.c.restore_until.is_(None),
                            gates_t.c.restore_until <= now,
                            gates_t.c.restore_owner == owner,
                        ),
                    )
                    .values(restore_owner=owner, restore_until=now + timedelta(seconds=seconds))
                ).rowcount
                if taken != 1:
                    raise TableBusy(f"another restore of {name} is in progress")

    def take(self, conn: Connection, tables: Iterable[str]) -> None:
        """Lock the gates of ``tables`` exclusively in the caller's transaction, as a load that
        rewrites them publishes (no mark: it is one transaction, run while no other load of
        them is)."""
        for name in sorted(set(tables)):
            conn.execute(
                update(gates_t)
                .where(gates_t.c.table_name == name)
                .values(restore_owner=gates_t.c.restore_owner)
            )

    def seize(self, conn: Connection, tables: Iterable[str], owner: str) -> None:
        """Lock the gates of ``tables`` exclusively in the caller's transaction (waiting for
        loads and batches that hold them) and check that ``owner``'s mark is still there."""
        for name in sorted(set(tables)):
            kept = conn.execute(
                update(gates_t)
                .where(gates_t.c.table_name == name, gates_t.c.restore_owner == owner)
                .values(restore_owner=owner)
            ).rowcount
            if kept != 1:
                raise TableBusy(f"the restore lost its mark on {name}; nothing was changed")

    def clear(self, tables: Iterable[str], owner: str, conn: Connection | None = None) -> None:
        """Remove ``owner``'s marks, in ``conn``'s transaction or a new one."""
        if conn is None:
            with self.db.write() as own:
                self.clear(tables, owner, own)
            return
        conn.execute(
            update(gates_t)
            .where(gates_t.c.table_name.in_(sorted(set(tables))), gates_t.c.restore_owner == owner)
            .values(restore_owner=None, restore_until=None)
        )
