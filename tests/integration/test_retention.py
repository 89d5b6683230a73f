"""Retention: finished jobs deleted on request or after JOB_RETENTION_DAYS with their rejected
rows and files (their loaded rows stay), and uploads no job owns swept away."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from common.bootstrap import Services
from common.model.jobs import JobStatus
from common.sql.db import utcnow
from common.sql.schema import ingest_jobs, job_rejections
from common.usecases.retention import UPLOADED_AT, Retention, RetentionPolicy
from tests.support.faults import write_blob
from tests.support.flow import api_client, count, drain, service_set, upload

DEPARTMENTS = b"1,Sales\n2,\n3,Support\n"


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    with service_set(tmp_path, database_url) as built:
        yield built


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with api_client(services) as c:
        yield c


def files(services: Services) -> list[str]:
    return [b.name for b in services.blob.list(services.settings.blob_container_name_historic)]


def rejections_of(services: Services, seq: int) -> int:
    with services.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(job_rejections)
                .where(job_rejections.c.job_seq == seq)
            ).scalar_one()
        )


def retention(services: Services, **policy: float) -> Retention:
    return Retention(
        services.db,
        services.jobs,
        services.uploads,
        "test-retention",
        RetentionPolicy(**policy),  # type: ignore[arg-type]
    )


def test_deleting_a_finished_job_removes_its_rejections_and_file_and_keeps_its_rows(
    client: TestClient, services: Services
) -> None:
    job_id = upload(client, "departments", DEPARTMENTS)["job_id"]
    drain(services)
    seq = services.jobs.get(job_id).seq
    assert rejections_of(services, seq) == 1

    answer = client.delete(f"/jobs/{job_id}")

    assert answer.status_code == 204
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert rejections_of(services, seq) == 0
    assert files(services) == []
    assert count(services, "departments") == 2
    # The same file again is a new job, whose rows are now duplicates
    again = upload(client, "departments", DEPARTMENTS)["job_id"]
    drain(services)
    assert again != job_id
    assert services.jobs.get(again).rows_rejected == 3


def test_an_unfinished_job_cannot_be_deleted(client: TestClient, services: Services) -> None:
    job_id = upload(client, "departments", DEPARTMENTS)["job_id"]

    answer = client.delete(f"/jobs/{job_id}")

    assert answer.status_code == 409
    assert "cancel it first" in answer.json()["detail"]
    assert client.delete("/jobs/no-such-job").status_code == 404
    assert services.jobs.get(job_id).status is JobStatus.QUEUED


def test_finished_jobs_older_than_the_retention_are_deleted(
    client: TestClient, services: Services
) -> None:
    old = upload(client, "departments", DEPARTMENTS)["job_id"]
    drain(services)
    young = upload(client, "jobs", b"1,Engineer\n")["job_id"]
    cancelled = upload(client, "departments", b"9,Legal\n")["job_id"]
    services.states.cancel(cancelled, "test")
    drain(services)
    with services.db.write() as conn:
        conn.execute(
            update(ingest_jobs)
            .where(ingest_jobs.c.job_id == old)
            .values(finished_at=utcnow() - timedelta(days=10))
        )

    removed = retention(services, job_days=7).run()

    assert removed.jobs == [old]
    assert {j.job_id for j in services.jobs.page(10, 0)[0]} == {young, cancelled}
    assert len(files(services)) == 2


def test_files_no_job_owns_are_swept_once_they_are_old(
    client: TestClient, services: Services
) -> None:
    container = services.settings.blob_container_name_historic
    owned = upload(client, "departments", DEPARTMENTS)["job_id"]
    old = (utcnow() - timedelta(hours=2)).isoformat()
    for name, stored in (("jobs/abandoned.csv", old), ("jobs/in-flight.csv", None)):
        writer = services.blob.open_writer(container, name)
        writer.write(b"1,x\n")
        writer.commit({UPLOADED_AT: stored or utcnow().isoformat()})
    write_blob(services.blob, container, "jobs/before-uploaded-at.csv", b"1,x\n")

    removed = retention(services).run()

    assert sorted(removed.files) == ["jobs/abandoned.csv", "jobs/before-uploaded-at.csv"]
    assert sorted(files(services)) == sorted(
        ["jobs/in-flight.csv", services.jobs.get(owned).blob_name]
    )
