"""SQL Server's code paths run for real through pyodbc and unixODBC, on a PostgreSQL database.

No SQL Server runs here. The engine below is what the service builds for ``mssql+pyodbc``
(SQLAlchemy's mssql dialect, ``fast_executemany``, pyodbc) with PostgreSQL's ODBC driver
underneath, so the statements the mssql dialect compiles and the rows pyodbc sends in
parameter arrays really run. What that needs from PostgreSQL:

- the T-SQL built-ins those statements call, created in the database with SQL Server's
  semantics: ``SCHEMA_NAME()`` (the dialect asks it on connect), ``OPENJSON(json)`` without
  a ``WITH`` clause (one row per array element: ``key``, ``value`` as text, ``type``), and
  ``YEAR(t)`` and ``MONTH(t)`` (the hire counts' keys);
- ``SET TRANSACTION ISOLATION LEVEL …``, which SQL Server applies to the session and
  PostgreSQL words otherwise: it is forwarded as PostgreSQL's session setting, ``SNAPSHOT`` as
  ``REPEATABLE READ`` (PostgreSQL's REPEATABLE READ is snapshot isolation); and SQL Server's
  default level, READ COMMITTED, which the dialect would read from ``sys.dm_exec_sessions``;
- a ``DELETE … OUTPUT deleted.<column>, …`` (the rows a delete removed, sent back), which
  PostgreSQL writes ``DELETE … RETURNING <column>, …``;
- names SQL Server reserves, which it quotes in brackets (``[key]``) and PostgreSQL in double
  quotes.

Every statement sent is recorded as sent (:class:`Sent`), with the parameters of each request
(one row of a ``fast_executemany`` array is one request's worth).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyodbc
from sqlalchemy.engine import make_url

from common.sql.db import Database, make_engine
from tests.support.services import postgres_database, unavailable

DRIVER = "PostgreSQL Unicode"

TSQL_BUILTINS = """
CREATE FUNCTION schema_name() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'dbo' $$;
CREATE FUNCTION openjson(doc text) RETURNS TABLE (key text, value text, type int)
LANGUAGE sql IMMUTABLE AS $$
    SELECT (j.n - 1)::text, j.v #>> '{}',
           CASE json_typeof(j.v) WHEN 'null' THEN 0 WHEN 'string' THEN 1 WHEN 'number' THEN 2
                WHEN 'boolean' THEN 3 WHEN 'array' THEN 4 ELSE 5 END
    FROM json_array_elements(doc::json) WITH ORDINALITY AS j(v, n)
$$;
CREATE FUNCTION "year"(t timestamp) RETURNS int LANGUAGE sql IMMUTABLE AS
    $$ SELECT extract(year FROM t)::int $$;
CREATE FUNCTION "month"(t timestamp) RETURNS int LANGUAGE sql IMMUTABLE AS
    $$ SELECT extract(month FROM t)::int $$;
"""
# A name SQL Server reserves, bracketed (OPENJSON's [key] column, a column named [order]).
_BRACKETED = re.compile(r"\[([A-Za-z_][A-Za-z0-9_]*)\]")
_ISOLATION = re.compile(r"^\s*SET TRANSACTION ISOLATION LEVEL ([A-Z ]+?)\s*$", re.IGNORECASE)
_POSTGRES_LEVEL = {"SNAPSHOT": "REPEATABLE READ"}
_DELETE_OUTPUT = re.compile(
    r"^(\s*DELETE FROM \S+) OUTPUT ((?:deleted\.\w+(?:, )?)+)(.*)$", re.IGNORECASE | re.DOTALL
)


def _as_postgres(sql: str) -> str:
    sql = _BRACKETED.sub(r'"\1"', sql)
    output = _DELETE_OUTPUT.match(sql)
    if output is None:
        return sql
    head, columns, rest = output.groups()
    returned = re.sub(r"deleted\.", "", columns, flags=re.IGNORECASE)
    return f"{head}{rest.rstrip()} RETURNING {returned}"


@dataclass(frozen=True)
class Request:
    sql: str
    parameters: int  # bound per request (per row of an executemany)
    rows: int = 1


@dataclass
class Sent:
    """Everything sent to "SQL Server", in order."""

    requests: list[Request] = field(default_factory=list)

    def statements(self) -> list[str]:
        return [r.sql for r in self.requests]


class _Cursor:
    def __init__(self, cursor: Any, sent: Sent) -> None:
        object.__setattr__(self, "_cursor", cursor)
        object.__setattr__(self, "_sent", sent)

    def execute(self, sql: str, *params: Any) -> Any:
        flat = params[0] if len(params) == 1 and isinstance(params[0], list | tuple) else params
        self._sent.requests.append(Request(sql, len(flat)))
        isolation = _ISOLATION.match(sql)
        if isolation:
            level = isolation.group(1).upper()
            self._cursor.execute(
                "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL "
                + _POSTGRES_LEVEL.get(level, level)
            )
            # SQL Server's setting outlives the transaction it was made in; PostgreSQL's SET is
            # undone with a rollback unless committed (SQLAlchemy sets it between transactions).
            self._cursor.commit()
            return self
        return self._cursor.execute(_as_postgres(sql), *params)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        self._sent.requests.append(Request(sql, len(rows[0]) if rows else 0, len(rows)))
        return self._cursor.executemany(_as_postgres(sql), rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._cursor, name, value)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class _Connection:
    """A pyodbc connection whose cursors record what they send."""

    def __init__(self, connection: Any, sent: Sent) -> None:
        object.__setattr__(self, "_connection", connection)
        object.__setattr__(self, "_sent", sent)

    def cursor(self) -> _Cursor:
        return _Cursor(self._connection.cursor(), self._sent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._connection, name, value)


def odbc_connection_string(url: str) -> str:
    parsed = make_url(url)
    return (
        f"DRIVER={{{DRIVER}}};SERVER={parsed.host};PORT={parsed.port or 5432};"
        f"DATABASE={parsed.database};UID={parsed.username};PWD={parsed.password or ''}"
    )


@contextmanager
def mssql_on_postgres() -> Iterator[tuple[Database, Sent, str]]:
    """A migrated PostgreSQL database, and a :class:`Database` on it with the ``mssql``
    dialect through pyodbc; yields (database, what it sent, the PostgreSQL URL)."""
    if DRIVER not in pyodbc.drivers():
        unavailable("the PostgreSQL ODBC driver (Debian odbc-postgresql) under unixODBC")
    from common.sql.migrate import upgrade

    with postgres_database() as url:
        postgres = Database.from_url(url)
        upgrade(postgres)
        with postgres.engine.begin() as conn:
            conn.exec_driver_sql(TSQL_BUILTINS)
        postgres.dispose()
        sent = Sent()
        odbc = odbc_connection_string(url)
        engine = make_engine(
            "mssql+pyodbc://",
            creator=lambda: _Connection(pyodbc.connect(odbc, autocommit=False), sent),
        )
        with engine.connect():  # the dialect meets its "server" once
            pass
        engine.dialect.default_isolation_level = "READ COMMITTED"
        db = Database(engine)
        try:
            yield db, sent, url
        finally:
            db.dispose()
