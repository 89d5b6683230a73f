"""Restore tables from backups, serialised against the loads and batches they would disturb.

A restore rewrites whole tables, so it must not interleave with a load of those tables or of
their children (whose rows reference the restored ids), nor with batches into them: the result
must be the outcome of some serial order. It marks its tables (new loads and batches keep
away), refuses while a load of them is running (``409`` naming the jobs) or, when asked, waits
for those to finish, and then rewrites the tables in one transaction that holds the tables'
gates exclusively (see :mod:`common.stores.gates`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection

from common.backup.records import BackupCatalog, BackupRecord
from common.backup.restore import restore
from common.errors import TableBusy
from common.model.catalog import children_of
from common.sql.db import Database
from common.stores.gates import TableGates
from common.stores.jobs import JobStore

# A restore's mark is a lease, renewed while it runs, so a process that dies frees its tables.
MARK_SECONDS = 60.0
_POLL_SECONDS = 0.5


def disturbed_by(tables: Iterable[str]) -> list[str]:
    """The tables a restore of ``tables`` must have to itself: them and their descendants."""
    found: list[str] = []
    pending = list(tables)
    while pending:
        name = pending.pop()
        if name not in found:
            found.append(name)
            pending.extend(children_of(name))
    return sorted(found)


class _Guard:
    """Inside the restore's transaction: take the gates, check again that no load of the
    tables is running, and clear the marks as the rows are replaced."""

    def __init__(self, gates: TableGates, jobs: JobStore, tables: list[str], owner: str) -> None:
        self.gates, self.jobs, self.tables, self.owner = gates, jobs, tables, owner

    def enter(self, conn: Connection) -> None:
        self.gates.seize(conn, self.tables, self.owner)
        running = self.jobs.running_on(self.tables, conn)
        if running:
            raise _Running(running)

    def leave(self, conn: Connection) -> None:
        self.gates.clear(self.tables, self.owner, conn)


class _Running(Exception):
    def __init__(self, jobs: list[str]) -> None:
        super().__init__(", ".join(jobs))
        self.jobs = jobs


class _MarkRenewer:
    def __init__(self, gates: TableGates, tables: list[str], owner: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(gates, tables, owner), name="restore-mark", daemon=True
        )

    def _run(self, gates: TableGates, tables: list[str], owner: str) -> None:
        while not self._stop.wait(MARK_SECONDS / 3):
            try:
                gates.mark(tables, owner, MARK_SECONDS)
            except Exception:
                return

    def __enter__(self) -> _MarkRenewer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def restore_tables(
    db: Database,
    catalog: BackupCatalog,
    jobs: JobStore,
    records: Sequence[BackupRecord],
    *,
    wait_seconds: float = 0.0,
) -> dict[str, int]:
    """Restore ``records`` (one per table) in one transaction; rows now in each table.

    Raises :class:`TableBusy` naming the running jobs if loads of the tables (or of their
    children) are still running after ``wait_seconds``, or if another restore holds them.
    """
    gates = TableGates(db)
    tables = disturbed_by(r.table for r in records)
    owner = str(uuid.uuid4())
    gates.mark(tables, owner, MARK_SECONDS)
    deadline = time.monotonic() + wait_seconds
    try:
        with _MarkRenewer(gates, tables, owner):
            while True:
                running = jobs.running_on(tables)
                if not running:
                    try:
                        return restore(
                            db, catalog, records, guard=_Guard(gates, jobs, tables, owner)
                        )
                    except _Running as exc:
                        running = exc.jobs
                if time.monotonic() >= deadline:
                    raise TableBusy(
                        f"{len(running)} load(s) of {', '.join(tables)} are running "
                        f"({', '.join(running)}); restore once they have finished, ask to wait "
                        "for them (?wait=true), or cancel them",
                        jobs=running,
                    )
                time.sleep(_POLL_SECONDS)
    finally:
        gates.clear(tables, owner)
