"""Write paths in parallel threads, on a few hot keys: the summary stays exact at every instant.

Threads run random sequences of JSON batches (inserts and moves between keys), workers ingest
uploads (plain, replacing rows, staged), a restore rewrites the table, one thread folds the
changes and another checks the summary against a recount in one snapshot again and again. No
check may ever find a difference, and on PostgreSQL no transaction may deadlock.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from common.bootstrap import Services
from common.errors import TableBusy, TransientError
from common.stores import hire_counts
from common.usecases.insert_batch import insert_batch
from common.usecases.restore import restore_tables
from common.usecases.summary import check_summary, fold_changes
from tests.integration.test_hire_counts import assert_exact, hire, hires_csv
from tests.support.flow import api_client, service_set, upload
from tests.support.services import empty_postgres_database
from worker.main import build_consumer

IDS = 400  # few ids, so that writers replace the same rows
ROUNDS = 12


def _deadlocks(services: Services) -> int:
    if services.db.dialect != "postgresql":
        return 0
    with services.db.read() as conn:
        found = conn.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        ).scalar_one()
    return int(found)


def _batches(services: Services, seed: int, errors: list[BaseException]) -> None:
    """Random batches on two departments and two jobs of one year: a handful of hot keys."""
    rng = random.Random(seed)
    for _ in range(ROUNDS):
        ids = sorted(rng.sample(range(1, IDS), rng.randint(1, 60)))
        rows = [
            hire(
                i,
                f"2021-{rng.randint(1, 12):02d}-01T00:00:00Z",
                rng.randint(1, 2),
                rng.randint(1, 2),
            )
            for i in ids
        ]
        try:
            insert_batch(
                services.db,
                services.retry,
                "hired_employees",
                rows,
                rng.choice(("reject", "update")),
            )
        except (TableBusy, TransientError):
            pass  # refused during a restore, or lost to a writer of the same ids: nothing written
        except BaseException as exc:
            errors.append(exc)
            return


def _repeat(action: Callable[[], None], stop: threading.Event, errors: list[BaseException]) -> None:
    while not stop.is_set():
        try:
            action()
        except TransientError:
            pass
        except BaseException as exc:
            errors.append(exc)
            return


def test_random_write_paths_in_parallel_leave_the_summary_exact(
    tmp_path: Path, database_url: str
) -> None:
    with (
        service_set(tmp_path, database_url, block_bytes=1024, part_bytes=4096) as services,
        api_client(services) as client,
    ):
        # Given parents, a backup of some hires, and uploads queued of every kind,
        for table, name in (("departments", "department"), ("jobs", "job")):
            rows = [{"id": i, name: f"{name} {i}"} for i in range(1, 5)]
            assert client.post(f"/tables/{table}/rows", json={"rows": rows}).status_code == 200
        batch = [hire(i, "2021-05-05T00:00:00Z", 1, 1) for i in range(IDS, IDS + 50)]
        assert client.post("/tables/hired_employees/rows", json={"rows": batch}).status_code == 200
        backup = services.backups.get(client.post("/backups/hired_employees").json()["backup_id"])
        for seed, params in enumerate(
            ({}, {"on_conflict": "update"}, {"on_conflict": "update", "atomic": "true"}, {})
        ):
            upload(client, "hired_employees", hires_csv(range(1, IDS, seed + 2), seed), **params)
        deadlocks = _deadlocks(services)
        mismatches: list[int] = []
        checks: list[int] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def check() -> None:
            found = check_summary(services.db)
            checks.append(found.hires)
            if not found.matches:
                mismatches.append(found.differing)

        def fold() -> None:
            fold_changes(services.db)

        def consume() -> None:
            consumer = build_consumer(services, stop)
            try:
                while services.queue.active_count():
                    consumer.run_once()
            except BaseException as exc:
                errors.append(exc)

        def restore() -> None:
            try:
                restore_tables(
                    services.db, services.backups, services.jobs, [backup], wait_seconds=30
                )
            except TableBusy:
                pass  # loads kept running all along: the restore is refused, nothing changed
            except BaseException as exc:
                errors.append(exc)

        # when batches, workers, a restore, folds and checks all run at once,
        writers = [threading.Thread(target=_batches, args=(services, s, errors)) for s in range(3)]
        writers += [threading.Thread(target=consume) for _ in range(2)]
        writers.append(threading.Thread(target=restore))
        chores = [
            threading.Thread(target=_repeat, args=(action, stop, errors))
            for action in (check, fold)
        ]
        for thread in writers + chores:
            thread.start()
        for thread in writers:
            thread.join(timeout=120)
        stop.set()
        for thread in chores:
            thread.join(timeout=60)

        # then no check ever saw the summary differ from the recount, nothing deadlocked,
        assert not errors, errors
        assert mismatches == []
        assert len(set(checks)) > 3, "the checks saw the table change under them"
        assert _deadlocks(services) == deadlocks
        # and the summary equals the test's own recount, before and after a last fold.
        assert services.queue.active_count() == 0
        assert_exact(services)
        fold_changes(services.db)
        assert_exact(services)


@pytest.fixture
def postgres_url(migrated_postgres_url: str) -> Iterator[str]:
    # PostgreSQL only: on SQLite writers wait for the fold, which holds the write lock.
    yield migrated_postgres_url
    empty_postgres_database(migrated_postgres_url)


def test_a_write_committed_while_the_fold_runs_stays_counted(
    tmp_path: Path, postgres_url: str
) -> None:
    with (
        service_set(tmp_path, postgres_url) as services,
        api_client(services) as client,
    ):
        # Given hires whose counts are still change rows,
        for table, name in (("departments", "department"), ("jobs", "job")):
            rows = [{"id": 1, name: f"{name} 1"}]
            assert client.post(f"/tables/{table}/rows", json={"rows": rows}).status_code == 200
        first = [hire(i, "2021-05-05T00:00:00Z", 1, 1) for i in range(1, 11)]
        insert_batch(services.db, services.retry, "hired_employees", first, "reject")
        later = [hire(i, "2021-05-05T00:00:00Z", 1, 1) for i in range(11, 16)]
        committed: list[int] = []

        def between_statements(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            # Another writer commits once the fold has summed the changes into the base and
            # before it deletes them.
            if statement.startswith("INSERT INTO hire_counts ") and not committed:
                insert_batch(services.db, services.retry, "hired_employees", later, "reject")
                committed.append(len(later))

        # when a batch commits between the fold's sum and its delete of the changes,
        with services.db.write(snapshot=True) as conn:
            event.listen(conn, "after_cursor_execute", between_statements)
            folded = hire_counts.fold(conn)
            event.remove(conn, "after_cursor_execute", between_statements)

        # then the fold moved what it saw, and the batch's counts are still there to be folded.
        assert committed == [5] and folded == 1
        assert check_summary(services.db).hires == 15
        assert_exact(services)
        fold_changes(services.db)
        assert_exact(services)
