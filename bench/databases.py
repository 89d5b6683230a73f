"""Throw-away PostgreSQL databases and migrated schemas for the benchmarks."""

from __future__ import annotations

import os
import uuid

import psycopg
from sqlalchemy.engine import make_url

from common.sql.db import Database
from common.sql.migrate import upgrade

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
COLUMNS = ["id", "name", "datetime", "department_id", "job_id"]


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def new_pg_database() -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(libpq(ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated(url: str) -> Database:
    db = Database.from_url(url)
    upgrade(db)
    return db
