"""Real services for tests: PostgreSQL databases made and dropped per test session.

A service that cannot be reached skips its tests locally and fails them in CI
(``INGEST_REQUIRE_SERVICES=1``), so a missing server never passes silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def services_required() -> bool:
    return os.environ.get("INGEST_REQUIRE_SERVICES") == "1"


def unavailable(what: str) -> None:
    """Skip (locally) or fail (in CI) because ``what`` cannot be reached."""
    message = f"{what} is not reachable"
    if services_required():
        pytest.fail(f"{message}; CI requires it (INGEST_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def _libpq(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database; its SQLAlchemy URL is yielded, then it is dropped."""
    name = f"ingest_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(_libpq(ADMIN_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError:
        unavailable(f"PostgreSQL at {make_url(ADMIN_URL).render_as_string()}")
        raise  # unreachable: unavailable() raises
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def end_other_sessions(url: str) -> None:
    """End every other session connected to the database at ``url``, and wait for them."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def empty_postgres_database(url: str) -> None:
    """Empty every table but the migrations' own and reset the statistics, as in a new migrated
    database: other sessions still connected are ended first, so that none holds a lock."""
    end_other_sessions(url)
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = current_schema() "
                "AND tablename NOT IN ('alembic_version', 'table_gates')"
            )
        ]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        # The gates are the migrations' own rows too: only their marks go.
        conn.execute("UPDATE table_gates SET restore_owner = NULL, restore_until = NULL")
        conn.execute("SELECT pg_stat_reset()")
