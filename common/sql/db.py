"""Engine creation and the one place where driver errors become the project's errors."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from common.errors import ConcurrentUpdate, DatabaseUnavailable, IngestError, PermanentError

log = structlog.get_logger("ingest.db")

# SQL Server error numbers worth another try: lock shortages, deadlocks, lock timeouts,
# throttling, failovers and reconfigurations, dropped links. The list of Microsoft.Data.SqlClient's
# configurable retry logic (SqlConfigurableRetryFactory), which follows Azure SQL's documented
# transient errors.
MSSQL_TRANSIENT_CODES = frozenset(
    {
        1204,  # cannot obtain a LOCK resource at this time
        1205,  # chosen as the deadlock victim
        1222,  # lock request time out period exceeded
        4060,  # cannot open database requested by the login
        4221,  # login to read-secondary failed, replica recycled
        40143,  # the service has encountered an error processing your request
        40197,  # the service has encountered an error processing your request (failover)
        40501,  # the service is currently busy
        40540,  # the service has encountered an error processing your request
        40613,  # database is not currently available
        49918,  # not enough resources to process request
        49919,  # too many create or update operations in progress
        49920,  # too many operations in progress
        10928,  # resource limit reached
        10929,  # server too busy for the resource guarantee
        233,  # error during login (no process on the other end of the pipe)
        997,  # error during login (overlapped I/O in progress)
        10053,  # connection aborted by the host
        10054,  # connection forcibly closed by the remote host
        10060,  # connection attempt timed out
    }
)
# SQL Server: a key inserted by another writer first (primary key, unique index).
MSSQL_DUPLICATE_KEY_CODES = frozenset({2627, 2601})
# ODBC SQLSTATEs of a dropped or timed-out link (communication link failure, unable to
# connect, timeout expired) and of a serialization failure.
ODBC_TRANSIENT_SQLSTATES = frozenset({"08S01", "08001", "08004", "HYT00", "HYT01", "40001"})
# pyodbc words each diagnostic record "[SQLSTATE] message (native error) (function)", further
# records after "; ".
_NATIVE_ERROR = re.compile(r"\((-?\d+)\)(?: \(\w+\))?(?=;|\s*$)")
# PostgreSQL SQLSTATE classes and codes worth another try.
PG_TRANSIENT_PREFIXES = ("08", "53", "57P", "40")
PG_UNIQUE_VIOLATION = "23505"
# The isolation level that reads one snapshot of every table: PostgreSQL's REPEATABLE READ is
# snapshot isolation; SQL Server's REPEATABLE READ is not (each page would see rows committed
# since the last), its SNAPSHOT is (Azure SQL allows it by default; SQL Server needs
# ALTER DATABASE … SET ALLOW_SNAPSHOT_ISOLATION ON). SQLite's WAL readers see a snapshot anyway,
# and its writers are one at a time.
SNAPSHOT_ISOLATION = {"postgresql": "REPEATABLE READ", "mssql": "SNAPSHOT"}
# An INSERT … SELECT's row count is kept only when asked for (psycopg closes the cursor).
COUNTED = {"preserve_rowcount": True}


def utcnow() -> datetime:
    """Now in UTC, naive, as stored in the database."""
    return datetime.now(UTC).replace(tzinfo=None)


def _is_pyodbc_error(orig: BaseException) -> bool:
    return type(orig).__module__ == "pyodbc"


def mssql_error_numbers(message: str) -> list[int]:
    """The native error numbers of every diagnostic record in a pyodbc error message."""
    return [int(n) for n in _NATIVE_ERROR.findall(message)]


def _translate_odbc(orig: BaseException, message: str) -> IngestError | None:
    """SQL Server's answer through pyodbc, by native error number and SQLSTATE; None when
    neither says more than the exception class does."""
    args = getattr(orig, "args", ())
    sqlstate = str(args[0]) if args else ""
    numbers = set(mssql_error_numbers(str(args[-1]) if args else ""))
    if numbers & MSSQL_DUPLICATE_KEY_CODES:
        return ConcurrentUpdate(f"another writer inserted the same key first: {message}")
    if numbers & MSSQL_TRANSIENT_CODES or sqlstate in ODBC_TRANSIENT_SQLSTATES:
        return DatabaseUnavailable(f"database temporarily unavailable: {message}")
    if numbers:
        return PermanentError(f"database error: {message}")
    return None


def translate_db_error(exc: BaseException) -> IngestError:
    """Map a SQLAlchemy or driver error to :class:`TransientError` or :class:`PermanentError`."""
    if isinstance(exc, IngestError):
        return exc
    orig = getattr(exc, "orig", None) or exc
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    message = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailable(f"database connection lost: {message}")
    if sqlstate:
        if sqlstate == PG_UNIQUE_VIOLATION:
            return ConcurrentUpdate(f"another writer inserted the same key first: {message}")
        if sqlstate.startswith(PG_TRANSIENT_PREFIXES):
            return DatabaseUnavailable(f"database temporarily unavailable: {message}")
        return PermanentError(f"database error: {message}")
    if _is_pyodbc_error(orig):
        found = _translate_odbc(orig, message)
        if found is not None:
            return found
    if isinstance(exc, sa_exc.IntegrityError):
        if "UNIQUE" in message.upper() or "PRIMARY KEY" in message.upper():
            return ConcurrentUpdate(f"another writer inserted the same key first: {message}")
        return PermanentError(f"database error: {message}")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return DatabaseUnavailable(f"database temporarily unavailable: {message}")
    if type(orig).__name__ in ("OperationalError", "InterfaceError"):
        return DatabaseUnavailable(f"database temporarily unavailable: {message}")
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return DatabaseUnavailable(f"database unreachable: {message}")
    return PermanentError(f"database error: {message}")


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sa_exc.SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:  # pragma: no cover - psycopg is a dependency
        pass
    try:
        import pyodbc  # type: ignore[import-not-found,unused-ignore]

        errors.append(pyodbc.Error)
    except ImportError:
        pass
    return tuple(errors)


DRIVER_ERRORS = _driver_errors()


# How long a SQLite connection waits for another's lock.
SQLITE_BUSY_SECONDS = 60


def _write_ahead_log(cur: sqlite3.Cursor) -> None:
    """Turn the file to WAL (it stays so). Turning a new file needs it alone for a moment, and
    when several processes open it at once SQLite answers "database is locked" straight away
    instead of waiting, so this waits as its busy timeout would."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide between DEFERRED and IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        _write_ahead_log(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings each dialect needs to behave the same."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS}, **kwargs)
        _sqlite_setup(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    if backend == "mssql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("fast_executemany", True)
        return create_engine(url, **kwargs)
    raise PermanentError(
        f"unsupported database {backend!r} in DATABASE_URL; "
        "use sqlite://, postgresql+psycopg:// or mssql+pyodbc://"
    )


class Database:
    """An engine plus transactions that speak the project's errors."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read transaction; with ``snapshot``, one that sees one state of every table
        however long it lasts (:data:`SNAPSHOT_ISOLATION`)."""
        try:
            with self.engine.connect() as conn, self._isolated(conn, snapshot).begin():
                yield conn
        except DRIVER_ERRORS as exc:
            raise translate_db_error(exc) from exc

    @contextmanager
    def write(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front to avoid upgrades.
        With ``snapshot``, it reads one state of every table (:data:`SNAPSHOT_ISOLATION`) and
        fails as transient when it would change a row another writer changed since."""
        try:
            with self.engine.connect() as conn:
                if self.dialect == "sqlite":
                    conn.execution_options(sqlite_begin="IMMEDIATE")
                with self._isolated(conn, snapshot).begin():
                    yield conn
        except DRIVER_ERRORS as exc:
            raise translate_db_error(exc) from exc

    def _isolated(self, conn: Connection, snapshot: bool) -> Connection:
        level = SNAPSHOT_ISOLATION.get(self.dialect) if snapshot else None
        return conn if level is None else conn.execution_options(isolation_level=level)

    def refresh_after_bulk_load(self, table: str) -> None:
        """Bring the planner's view of ``table`` up to date after a large load or a restore.

        On PostgreSQL, ``VACUUM (ANALYZE)`` marks the new pages all-visible, so the loader's
        id lookups scan the primary key alone instead of visiting the heap for every row
        (autovacuum would, but a minute or more later), clears the rows a restore replaced,
        and refreshes the statistics.
        Elsewhere the engines' automatic statistics suffice. A failure is only logged: the
        data is in, and the database catches up on its own.
        """
        if self.vacuum(table):
            log.info("table vacuumed and analyzed after a bulk load", table=table)

    def vacuum(self, table: str) -> bool:
        """``VACUUM (ANALYZE)`` of ``table`` on PostgreSQL (nothing elsewhere); whether it ran.
        A failure is only logged: autovacuum comes by later anyway."""
        if self.dialect != "postgresql":
            return False
        quoted = self.engine.dialect.identifier_preparer.quote(table)
        try:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(text(f"VACUUM (ANALYZE) {quoted}"))
        except DRIVER_ERRORS as exc:
            log.warning("table not vacuumed", table=table, error=str(exc))
            return False
        return True

    def ping(self) -> None:
        with self.read() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
