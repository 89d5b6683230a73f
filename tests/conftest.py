from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from common.bootstrap import Services, build_services
from common.model.catalog_file import shipped_catalog
from common.retry import RetryPolicy
from common.settings import Settings
from common.sql.catalog_tables import catalog_tables
from common.sql.db import Database
from common.sql.migrate import upgrade
from common.stores import hire_counts
from tests.support.services import (
    empty_postgres_database,
    end_other_sessions,
    postgres_database,
)

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"

# Every fast test's worker settings: short locks and no real waiting between retries.
FAST = {
    "lock_duration_seconds": 5.0,
    "receive_wait_seconds": 0.2,
    "dependency_wait_seconds": 0.2,
    "transient_backoff_seconds": 0.0,
    "transient_backoff_max_seconds": 0.0,
}
NO_WAIT_RETRY = RetryPolicy(attempts=3, initial_wait_seconds=0, max_wait_seconds=0)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file that each test copies instead of migrating its own."""
    path = tmp_path_factory.mktemp("migrated") / "ingest.db"
    db = Database.from_url(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the session (per pytest-xdist worker): each test
    that uses it gets it emptied afterwards, which is much faster than a database per test."""
    with postgres_database() as url:
        db = Database.from_url(url)
        upgrade(db)
        db.dispose()
        yield url


def assert_summary_matches_recount(url: str) -> None:
    """The reports' summary (base plus changes) equals a recount of hired_employees, in one
    snapshot; nothing to compare where the tables are not there (a test went back to an older
    revision)."""
    db = Database.from_url(url)
    try:
        with db.read(snapshot=True) as conn:
            present = set(inspect(conn).get_table_names())
            if not {"hired_employees", "hire_counts", "hire_count_changes"} <= present:
                return
            hired = catalog_tables(shipped_catalog()).data["hired_employees"]
            held = hire_counts.totals(conn)
            counted = hire_counts.recounted(conn, hired)
    finally:
        db.dispose()
    if held != counted:
        keys = sorted(k for k in held.keys() | counted.keys() if held.get(k) != counted.get(k))
        examples = "; ".join(f"{k}: {held.get(k, 0)} vs {counted.get(k, 0)}" for k in keys)
        pytest.fail(f"summary vs recount differ at {len(keys)} keys: {examples[:2000]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind. Whatever the test wrote, through whichever
    path, the reports' summary must equal a recount of the hires afterwards."""
    if request.param == "sqlite":
        path = tmp_path / "ingest.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
        yield f"sqlite:///{path}"
        assert_summary_matches_recount(f"sqlite:///{path}")
    else:
        url = request.getfixturevalue("migrated_postgres_url")
        try:
            yield url
            end_other_sessions(url)  # none may hold a lock the recount would wait for
            assert_summary_matches_recount(url)
        finally:
            empty_postgres_database(url)


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, **{**FAST, **overrides})


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    built = build_services(make_settings(tmp_path, database_url), retry=NO_WAIT_RETRY)
    yield built
    built.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty, unmigrated database of each kind, for tests of the migrations."""
    if request.param == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp_path / 'old.db'}")
        yield db
        db.dispose()
        return
    with postgres_database() as url:
        db = Database.from_url(url)
        yield db
        db.dispose()
