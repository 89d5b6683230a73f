"""Migrations started by several processes at the same moment (an API and workers starting
together) leave one schema at the newest revision, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from common.sql.db import Database
from common.sql.migrate import HEAD, MIGRATIONS, upgrade
from common.sql.schema import metadata
from tests.support.processes import REPO, service_env
from tests.support.services import postgres_database

PROCESSES = 4
START_WITHIN_SECONDS = 60.0
# Each process imports everything, says so, then waits for the go file: the migrations
# themselves start within milliseconds of each other.
GATED = """
import sys, time
from pathlib import Path
import common.sql.migrate
print("ready", flush=True)
go = Path(sys.argv.pop())
while not go.exists():
    time.sleep(0.002)
common.sql.migrate.main()
"""


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_run_by_several_processes_at_once_leave_one_schema(
    tmp_path: Path, kind: str
) -> None:
    with empty_database(kind, tmp_path) as url:
        go = tmp_path / "go"
        env = service_env(tmp_path / "data", database_url=url)
        logs = [tmp_path / f"migrate-{i}.log" for i in range(PROCESSES)]
        processes = []
        for log in logs:
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", GATED, str(go)],
                        cwd=REPO,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        try:
            # Given every process ready to migrate the same empty database,
            deadline = time.monotonic() + START_WITHIN_SECONDS
            while not all(log.read_text().startswith("ready") for log in logs):
                assert all(p.poll() is None for p in processes), [g.read_text() for g in logs]
                assert time.monotonic() < deadline, "the processes did not start"
                time.sleep(0.05)
            # when they all start at once,
            go.touch()
            codes = [p.wait(timeout=120) for p in processes]
        finally:
            for p in processes:
                if p.poll() is None:
                    p.kill()
                    p.wait()

        # then each one succeeds,
        outputs = [log.read_text() for log in logs]
        assert codes == [0] * PROCESSES, outputs
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        assert all(f"schema at revision {head}" in out for out in outputs), outputs
        # and the database holds the newest schema once.
        db = Database.from_url(url)
        try:
            with db.engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
                tables = set(inspect(conn).get_table_names())
        finally:
            db.dispose()
        assert versions == [(head,)]
        assert set(metadata.tables) <= tables


def test_the_revision_checked_at_start_is_the_newest_migration() -> None:
    assert ScriptDirectory(str(MIGRATIONS)).get_current_head() == HEAD


def test_a_process_starting_on_an_up_to_date_schema_does_not_load_the_migrations(
    tmp_path: Path,
) -> None:
    # Given a database brought to the newest revision
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database.from_url(url)
    try:
        upgrade(db)
    finally:
        db.dispose()
    # When another process starts on it, then it finds the schema ready without Alembic
    check = (
        "import sys\n"
        "from common.sql.db import Database\n"
        "from common.sql.migrate import current_revision, upgrade\n"
        f"db = Database.from_url({url!r})\n"
        "upgrade(db)\n"
        "print(current_revision(db), 'alembic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [HEAD, "False"]
