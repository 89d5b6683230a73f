"""Create or upgrade the schema to the newest migration, safely from several processes at once."""

from __future__ import annotations

import argparse
import fcntl
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import Connection, inspect, text

from common.errors import PermanentError
from common.model.catalog import current
from common.settings import load_settings
from common.sql.catalog_sync import sync_catalog
from common.sql.db import Database
from common.stores.gates import TableGates

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger("ingest.schema")

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision (a test holds it to Alembic's head). A database already there is not
# upgraded at all: every process checks at start, and Alembic takes about a second to import.
HEAD = "0011"
# Any constant works; it only has to be the same in every process of the service.
_PG_LOCK_KEY = 7_406_118_512
# SQL Server: an application lock held by the session; sp_getapplock's return status says
# whether it was granted (0, or 1 after waiting) or not (-1 timeout, -2 cancelled, -3 chosen
# as deadlock victim, -999 bad call), so it is selected and checked.
MSSQL_TAKE_LOCK = (
    "SET NOCOUNT ON; DECLARE @status INT; "
    "EXEC @status = sp_getapplock @Resource = 'ingest-migrations', @LockMode = 'Exclusive', "
    "@LockOwner = 'Session', @LockTimeout = 600000; SELECT @status"
)
MSSQL_RELEASE_LOCK = (
    "EXEC sp_releaseapplock @Resource = 'ingest-migrations', @LockOwner = 'Session'"
)


def check_applock_status(status: int | None) -> None:
    """Raise unless ``sp_getapplock`` granted the lock."""
    if status is None or status < 0:
        meaning = {-1: "timed out", -2: "was cancelled", -3: "was chosen as deadlock victim"}
        why = meaning.get(status or -999, "was refused")
        raise PermanentError(
            f"the schema was not upgraded: the migration lock {why} (sp_getapplock {status})"
        )


def _config(conn: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def offline_sql(url: str) -> str:
    """The DDL the migrations would run on the database at ``url``, without connecting."""
    from alembic import command
    from alembic.config import Config

    buffer = io.StringIO()
    cfg = Config(output_buffer=buffer)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "head", sql=True)
    return buffer.getvalue()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(found) if found is not None else None


@contextmanager
def _file_lock(db: Database) -> Iterator[None]:
    """On SQLite, an exclusive lock on a file beside the database for the whole upgrade:
    Alembic's SQLite support does not keep DDL in one transaction, so ``BEGIN IMMEDIATE``
    alone lets a second process read the revision half-way through another's upgrade."""
    path = db.engine.url.database
    if db.dialect != "sqlite" or not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrating", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the newest by default); concurrent callers wait for
    each other on a database lock."""
    if revision == "head" and current_revision(db) == HEAD:
        _sync_catalog(db)
        return
    from alembic import command

    with _file_lock(db), db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
        elif db.dialect == "mssql":
            check_applock_status(conn.execute(text(MSSQL_TAKE_LOCK)).scalar())
            conn.commit()
        elif db.dialect == "sqlite":
            conn.execution_options(sqlite_begin="IMMEDIATE")
        try:
            command.upgrade(_config(conn), revision)
            conn.commit()
        finally:
            if db.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
            elif db.dialect == "mssql":
                conn.execute(text(MSSQL_RELEASE_LOCK))
                conn.commit()
    if revision == "head":
        _sync_catalog(db)


def _sync_catalog(db: Database) -> None:
    """The catalog's tables, after the service's own (see :mod:`common.sql.catalog_sync`)."""
    for change in sync_catalog(db, current()):
        log.info("catalog change applied", change=change)
    TableGates(db).ensure(current().load_order)


def main() -> None:
    parser = argparse.ArgumentParser(description="Create or upgrade the database schema.")
    parser.parse_args()
    settings = load_settings()
    db = Database.from_url(settings.sqlalchemy_url)
    upgrade(db)
    print(f"schema at revision {current_revision(db)}")
    db.dispose()


if __name__ == "__main__":
    main()
