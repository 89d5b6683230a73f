"""Backups to AVRO and restores from them, on SQLite and PostgreSQL.

Given the sample data loaded through the API, a backup run is read back with fastavro and the
Apache ``avro`` package, survives the loss of the database (a service on an empty database finds
it in the blob store alone and restores every row with its type), and damaged or foreign files
are refused before the table is touched. Scheduled runs are taken once by one of many workers.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import avro.datafile
import avro.io
import fastavro
import pytest
from fastapi.testclient import TestClient

from common.backup.avroschema import META_VERSION, SCHEMA_VERSION
from common.backup.records import BackupRecord
from common.backup.scheduler import BackupScheduler, run_id_for
from common.bootstrap import Services
from common.sql.db import Database
from common.sql.migrate import upgrade
from tests.conftest import SAMPLE_DATA
from tests.support.azurite import azurite
from tests.support.flow import api_client, drain, service_set, table_rows, vacuums_and_analyzes
from tests.support.services import postgres_database
from worker.main import build_consumer

TABLES = ("departments", "jobs", "hired_employees")


@contextmanager
def empty_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Another migrated, empty database of the same kind as ``database_url``."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'other.db'}"
        db = Database.from_url(url)
        upgrade(db)
        db.dispose()
        yield url
        return
    with postgres_database() as url:
        db = Database.from_url(url)
        upgrade(db)
        db.dispose()
        yield url


def load_sample(client: TestClient, services: Services) -> None:
    files = {t: (f"{t}.csv", (SAMPLE_DATA / f"{t}.csv").read_bytes()) for t in TABLES}
    assert client.post("/uploads", files=files).status_code == 202
    drain(services)


def back_up(client: TestClient, table: str | None = None) -> Any:
    response = client.post(f"/backups/{table}" if table else "/backups")
    assert response.status_code == 201, response.text
    return response.json()


def blob_file(services: Services, backup: dict[str, Any]) -> Path:
    root = services.settings.blob_root / services.settings.blob_container_name_backup
    return root / backup["table"] / f"{backup['backup_id']}.avro"


@pytest.fixture
def loaded(tmp_path: Path, database_url: str) -> Iterator[tuple[Services, TestClient]]:
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        load_sample(client, services)
        yield services, client


@pytest.fixture(params=["local", "azurite"])
def blob_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings for the embedded blob folder, or for Azure Blob Storage on Azurite."""
    if request.param == "local":
        yield {}
        return
    with azurite(tmp_path) as server:
        yield {"azure_storage_connection_string": server.connection_string}


def test_a_run_restores_every_row_and_type_into_an_empty_database(
    tmp_path: Path, database_url: str, blob_backend: dict[str, str]
) -> None:
    # Given the sample data and a backup run of all three tables
    with (
        service_set(tmp_path, database_url, **blob_backend) as services,
        api_client(services) as client,
    ):
        load_sample(client, services)
        run = back_up(client)
        before = {t: table_rows(services, t) for t in TABLES}
        newest_job = client.get("/jobs", params={"table": "hired_employees"}).json()["items"][0]
    assert [b["table"] for b in run["backups"]] == list(TABLES)
    assert {b["run_id"] for b in run["backups"]} == {run["run_id"]}
    counts = {b["table"]: b["row_count"] for b in run["backups"]}
    assert counts == {t: len(before[t]) for t in TABLES}
    assert counts["hired_employees"] == 1929
    hired = next(b for b in run["backups"] if b["table"] == "hired_employees")
    assert hired["last_job_id"] == newest_job["job_id"]

    # When the database is lost and a service on an empty one restores from the blobs alone
    with (
        empty_database(database_url, tmp_path) as fresh,
        service_set(tmp_path, fresh, **blob_backend) as services,
        api_client(services) as client,
    ):
        listed = client.get("/backups").json()
        assert listed["total"] == 3
        assert {b["backup_id"] for b in listed["items"]} == {b["backup_id"] for b in run["backups"]}
        response = client.post(f"/backups/runs/{run['run_id']}/restore")
        assert response.status_code == 200, response.text
        assert response.json()["restored"] == counts

        # Then every row comes back, with its types
        for table in TABLES:
            assert table_rows(services, table) == before[table], table
        first = table_rows(services, "hired_employees")[0]
        assert isinstance(first["datetime"], datetime) and isinstance(first["id"], int)
        report = client.get("/reports/hires-by-quarter", params={"year": 2021})
        assert report.status_code == 200 and report.json()["rows"]


def test_backup_files_read_back_with_fastavro_and_apache_avro(
    loaded: tuple[Services, TestClient],
) -> None:
    services, client = loaded
    backup = back_up(client, "hired_employees")
    expected = table_rows(services, "hired_employees")

    download = client.get(f"/backups/{backup['backup_id']}/download")
    assert download.status_code == 200
    assert len(download.content) == backup["byte_size"]

    reader = fastavro.reader(io.BytesIO(download.content))
    fields = {f["name"]: f["type"] for f in reader.writer_schema["fields"]}
    assert fields["id"] == "long" and fields["name"] == "string"
    assert fields["datetime"] == {"type": "long", "logicalType": "timestamp-micros"}
    rows = list(reader)
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got["datetime"] == want["datetime"].replace(tzinfo=UTC)
        assert {k: v for k, v in got.items() if k != "datetime"} == {
            k: v for k, v in want.items() if k != "datetime"
        }

    apache = avro.datafile.DataFileReader(io.BytesIO(download.content), avro.io.DatumReader())
    apache_rows = list(apache)
    assert [r["id"] for r in apache_rows] == [r["id"] for r in expected]
    assert apache_rows[0]["datetime"] == expected[0]["datetime"].replace(tzinfo=UTC)


def _damage(path: Path, how: str, services: Services, foreign: dict[str, Any]) -> None:
    data = path.read_bytes()
    if how == "corrupt":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif how == "truncated":
        path.write_bytes(data[: len(data) * 2 // 3])
    else:  # another table's file under this backup's record, with a matching checksum
        other = blob_file(services, foreign).read_bytes()
        catalog = services.backups
        record = catalog.get(path.stem)
        writer = catalog.blob.open_writer(catalog.container, record.blob_name)
        writer.write(other)
        fake = BackupRecord(
            **{
                **record.__dict__,
                "byte_size": len(other),
                "sha256": hashlib.sha256(other).hexdigest(),
            }
        )
        writer.commit(fake.to_metadata())


@pytest.mark.parametrize("how", ["corrupt", "truncated", "foreign"])
def test_a_damaged_or_foreign_backup_is_refused_and_the_table_untouched(
    loaded: tuple[Services, TestClient], how: str
) -> None:
    services, client = loaded
    backup = back_up(client, "departments")
    foreign = back_up(client, "jobs")
    _damage(blob_file(services, backup), how, services, foreign)
    # The table changes after the backup, so a restore would be visible.
    added = client.post("/tables/departments/rows", json={"rows": [{"id": 50, "department": "X"}]})
    assert added.status_code == 200, added.text
    before = table_rows(services, "departments")

    response = client.post(f"/backups/{backup['backup_id']}/restore")

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    expected_words = {"corrupt": "checksum", "truncated": "truncated", "foreign": "jobs"}[how]
    assert expected_words in response.json()["detail"]
    assert table_rows(services, "departments") == before


def _with_schema_version(
    services: Services, backup: dict[str, Any], *, in_file: int, in_record: int
) -> None:
    """Write the backup again saying schema version ``in_file`` in its AVRO header and
    ``in_record`` in its record, with a checksum that matches the new bytes."""
    catalog = services.backups
    record = catalog.get(backup["backup_id"])
    reader = fastavro.reader(io.BytesIO(blob_file(services, backup).read_bytes()))
    out = io.BytesIO()
    metadata = {k: v for k, v in reader.metadata.items() if not k.startswith("avro.")}
    fastavro.writer(
        out, reader.writer_schema, list(reader), metadata={**metadata, META_VERSION: str(in_file)}
    )
    data = out.getvalue()
    writer = catalog.blob.open_writer(catalog.container, record.blob_name)
    writer.write(data)
    changed = {"byte_size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    writer.commit(
        BackupRecord(**{**record.__dict__, **changed, "schema_version": in_record}).to_metadata()
    )


@pytest.mark.parametrize(
    ("in_file", "in_record", "says"),
    [
        (SCHEMA_VERSION + 98, SCHEMA_VERSION + 98, "is not one this service reads"),
        (SCHEMA_VERSION, SCHEMA_VERSION + 1, "its record"),
    ],
    ids=["unknown-version", "file-and-record-disagree"],
)
def test_a_backup_of_another_schema_version_is_refused_and_the_table_untouched(
    loaded: tuple[Services, TestClient], in_file: int, in_record: int, says: str
) -> None:
    services, client = loaded
    backup = back_up(client, "departments")
    _with_schema_version(services, backup, in_file=in_file, in_record=in_record)
    added = client.post("/tables/departments/rows", json={"rows": [{"id": 50, "department": "X"}]})
    assert added.status_code == 200, added.text
    before = table_rows(services, "departments")

    response = client.post(f"/backups/{backup['backup_id']}/restore")

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "schema version" in response.json()["detail"] and says in response.json()["detail"]
    assert table_rows(services, "departments") == before


def test_backups_are_listed_newest_first_and_filtered_by_table_and_run(
    loaded: tuple[Services, TestClient],
) -> None:
    _, client = loaded
    # Given a run of all three tables, a backup of jobs alone, and another run
    first = back_up(client)
    jobs_alone = back_up(client, "jobs")
    second = back_up(client)
    taken = [*first["backups"], jobs_alone, *second["backups"]]

    def listed(**params: Any) -> tuple[list[str], int]:
        answer = client.get("/backups", params={"limit": 100, **params})
        assert answer.status_code == 200, answer.text
        page = answer.json()
        return [b["backup_id"] for b in page["items"]], page["total"]

    # Then the list is newest first, and each filter keeps exactly its backups, in that order
    newest_first = [b["backup_id"] for b in reversed(taken)]
    assert listed() == (newest_first, 7)
    jobs = [b["backup_id"] for b in reversed(taken) if b["table"] == "jobs"]
    assert listed(table="jobs") == (jobs, 3)
    run = [b["backup_id"] for b in reversed(first["backups"])]
    assert listed(run_id=first["run_id"]) == (run, 3)
    [first_jobs] = [b["backup_id"] for b in first["backups"] if b["table"] == "jobs"]
    assert listed(table="jobs", run_id=first["run_id"]) == ([first_jobs], 1)
    assert listed(run_id=jobs_alone["run_id"]) == ([jobs_alone["backup_id"]], 1)
    assert listed(run_id="0" * 32) == ([], 0)
    # and pages are slices of that order, with the total of the filter.
    page = client.get("/backups", params={"table": "jobs", "limit": 1, "offset": 1}).json()
    assert ([b["backup_id"] for b in page["items"]], page["total"]) == (jobs[1:2], 3)
    unknown = client.get("/backups", params={"table": "employees"})
    assert unknown.status_code == 404, unknown.text


def test_restoring_a_parent_that_lacks_referenced_ids_is_a_conflict(
    loaded: tuple[Services, TestClient],
) -> None:
    services, client = loaded
    backup = back_up(client, "departments")
    client.post("/tables/departments/rows", json={"rows": [{"id": 77, "department": "Legal"}]})
    hire = {"id": 90001, "name": "Ada", "datetime": "2021-05-01T10:00:00Z", "job_id": 1}
    added = client.post(
        "/tables/hired_employees/rows", json={"rows": [hire | {"department_id": 77}]}
    )
    assert added.json()["inserted"] == 1, added.text
    before = table_rows(services, "departments")

    response = client.post(f"/backups/{backup['backup_id']}/restore")

    assert response.status_code == 409, response.text
    body = response.json()
    assert body["dangling"] == {"hired_employees.department_id": 1}
    assert "1 hired_employees rows" in body["detail"]
    assert table_rows(services, "departments") == before
    # The same backup restores once the referencing row is gone from the picture: a whole run.
    run = back_up(client)
    assert client.post(f"/backups/runs/{run['run_id']}/restore").status_code == 200


def test_backups_need_the_admin_role(tmp_path: Path, database_url: str) -> None:
    keys = "reader-key-0123456789=read,admin-key-0123456789=admin"
    with (
        service_set(tmp_path, database_url, api_keys=keys) as services,
        api_client(services) as client,
    ):
        assert client.get("/backups").status_code == 401
        read = {"X-API-Key": "reader-key-0123456789"}
        assert client.post("/backups", headers=read).status_code == 403
        admin = {"X-API-Key": "admin-key-0123456789"}
        assert client.post("/backups", headers=admin).status_code == 201
        assert client.get("/backups", headers=admin).json()["total"] == 3


def test_a_schedule_runs_once_per_time_across_workers_and_keeps_the_newest(
    tmp_path: Path, database_url: str
) -> None:
    with service_set(tmp_path, database_url) as services:
        catalog = services.backups
        schedulers = [
            BackupScheduler(services.db, catalog, "* * * * *", 2, owner=f"worker-{i}")
            for i in range(5)
        ]

        def tick_all(at: datetime) -> int:
            taken: list[int] = []
            barrier = threading.Barrier(len(schedulers))

            def tick(s: BackupScheduler) -> None:
                barrier.wait()
                taken.append(len(s.tick(at)))

            threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(taken)

        # The first time only arms the schedule: starting a service takes no backup at once.
        assert tick_all(datetime(2024, 1, 1, 0, 0, 30)) == 0
        for minute in (1, 2, 3):
            at = datetime(2024, 1, 1, 0, minute, 20)
            assert tick_all(at) == 3, minute  # one run of three tables, by one worker
            assert tick_all(at.replace(second=50)) == 0  # and no second run for that time

        records = catalog.all()
        runs = {r.run_id for r in records}
        assert runs == {run_id_for(datetime(2024, 1, 1, 0, m)) for m in (2, 3)}  # retention 2
        assert sorted(r.table for r in records) == sorted(TABLES * 2)


def test_workers_take_scheduled_backups_in_their_loop(tmp_path: Path, database_url: str) -> None:
    # A schedule every second (six fields: seconds last) and three consumers in threads.
    with service_set(
        tmp_path, database_url, backup_schedule="* * * * * *", backup_retention=50
    ) as services:
        stop = threading.Event()
        consumers = [build_consumer(services, stop) for _ in range(3)]
        threads = [
            threading.Thread(target=lambda c=c: [c.run_once() for _ in iter(stop.is_set, True)])
            for c in consumers
        ]
        for t in threads:
            t.start()
        stop.wait(3.5)
        stop.set()
        for t in threads:
            t.join()
        records = services.backups.all()
    by_run: dict[str, list[str]] = {}
    for r in records:
        by_run.setdefault(r.run_id, []).append(r.table)
    assert 1 <= len(by_run) <= 4, by_run
    assert all(sorted(t) == sorted(TABLES) for t in by_run.values()), by_run


def test_unknown_backups_and_a_bad_schedule_are_explained(
    tmp_path: Path, database_url: str
) -> None:
    from pydantic import ValidationError

    from tests.conftest import make_settings

    with pytest.raises(ValidationError, match="BACKUP_SCHEDULE 'every day'"):
        make_settings(tmp_path, database_url, backup_schedule="every day")
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        missing = client.get(f"/backups/{'0' * 32}")
        assert missing.status_code == 404 and "no backup" in missing.json()["detail"]
        assert client.post("/backups/nosuch").status_code == 404
        page = client.get("/backups", params={"limit": 1}).json()
        assert page == {"items": [], "total": 0, "limit": 1, "offset": 0}


def test_backup_statements_compile_to_t_sql(tmp_path: Path) -> None:
    from sqlalchemy import event
    from sqlalchemy.sql import ClauseElement

    from tests.support.tsql import as_tsql, problems

    seen: list[ClauseElement] = []
    with service_set(tmp_path, f"sqlite:///{tmp_path / 't.db'}") as services:
        upgrade(services.db)

        @event.listens_for(services.db.engine, "before_execute")
        def _record(_conn: Any, clause: Any, *_args: Any) -> None:
            if isinstance(clause, ClauseElement):
                seen.append(clause)

        with api_client(services) as client:
            load_sample(client, services)
            run = back_up(client)
            assert client.post(f"/backups/runs/{run['run_id']}/restore").status_code == 200
        scheduler = BackupScheduler(services.db, services.backups, "* * * * *", 1, "w")
        scheduler.tick(datetime(2024, 1, 1, 0, 0, 30))
        scheduler.tick(datetime(2024, 1, 1, 0, 1, 30))
    assert problems([as_tsql(statement) for statement in seen]) == {}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_restored_table_is_vacuumed_on_postgresql(
    loaded: tuple[Services, TestClient],
) -> None:
    # The restore rewrote every row: the old ones are dead until a vacuum clears them, and the
    # reports' index-only scans visit the heap until the new pages are marked visible.
    services, client = loaded
    backup = back_up(client, "hired_employees")
    before, _ = vacuums_and_analyzes(services, "hired_employees")
    answer = client.post(f"/backups/{backup['backup_id']}/restore")
    assert answer.status_code == 200, answer.text
    assert vacuums_and_analyzes(services, "hired_employees")[0] == before + 1
