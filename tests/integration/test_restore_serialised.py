"""Restores and loads of the same tables run as if one after the other: a restore refuses (or
waits for) running loads, loads and batches stay away while a restore runs, and the table ends
as some serial order of the operations left it."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.bootstrap import Services
from common.model.jobs import JobStatus
from tests.support.faults import HookedParts, SlicedBlobStore
from tests.support.flow import api_client, drain, service_set, table_ids, upload
from tests.support.serving import http, serving
from worker.main import build_consumer

BACKUP_IDS = list(range(1, 51))
LOAD_IDS = list(range(1001, 3001))


@dataclass
class Stage:
    services: Services
    blob: SlicedBlobStore
    parts: HookedParts
    backup_id: str
    departments_backup_id: str


def hires(ids: list[int]) -> bytes:
    return "".join(
        f"{i},Person {i},2021-0{1 + i % 9}-01T00:00:00Z,{1 + i % 10},{1 + i % 10}\n" for i in ids
    ).encode()


@pytest.fixture
def stage(tmp_path: Path, database_url: str) -> Iterator[Stage]:
    """Ten departments and jobs, a backup of 50 hires, then the hires table emptied of nothing:
    the backup is what the table holds until the test loads more."""
    sliced: list[SlicedBlobStore] = []

    def wrap(store: object) -> SlicedBlobStore:
        sliced.append(SlicedBlobStore(store, slice_bytes=4096))  # type: ignore[arg-type]
        return sliced[0]

    with service_set(tmp_path, database_url, wrap_blob=wrap, block_bytes=2048) as services:
        hooked = HookedParts(services.parts)
        services.parts = hooked
        with api_client(services) as client:
            for table, name in (("departments", "department"), ("jobs", "job")):
                rows = [{"id": i, name: f"{name} {i}"} for i in range(1, 11)]
                assert client.post(f"/tables/{table}/rows", json={"rows": rows}).status_code == 200
            upload(client, "hired_employees", hires(BACKUP_IDS))
            drain(services)
            backup = client.post("/backups/hired_employees").json()["backup_id"]
            departments = client.post("/backups/departments").json()["backup_id"]
        yield Stage(services, sliced[0], hooked, backup, departments)


def test_a_restore_during_a_load_is_refused_naming_the_load_or_waits_for_it(stage: Stage) -> None:
    services = stage.services
    paused = threading.Event()
    go_on = threading.Event()
    with api_client(services) as client:
        job_id = upload(client, "hired_employees", hires(LOAD_IDS))["job_id"]
    # The worker first reads the file's first 64 KiB (16 slices) to check it is text; then
    # come the blocks. Pause on the third slice of those.
    target = stage.blob.slices + 16 + 3

    def pause_between_blocks(n: int) -> None:
        # Reading runs ahead of the commits, outside their transactions.
        if n == target:
            paused.set()
            go_on.wait(30)

    stage.blob.before_slice = pause_between_blocks
    worker = threading.Thread(target=drain, args=(services,))
    worker.start()
    try:
        assert paused.wait(30)
        deadline = time.monotonic() + 30
        while services.jobs.get(job_id).rows_inserted == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with serving(services) as url, http(url) as client:
            # A restore of the table, or of a table its rows reference, is refused while the
            # load runs, naming the load
            for backup in (stage.backup_id, stage.departments_backup_id):
                refused = client.post(f"/backups/{backup}/restore")
                assert refused.status_code == 409, refused.text
                assert refused.json()["jobs"] == [job_id]
                assert job_id in refused.json()["detail"]

            # Asked to wait, it restores once the load has finished
            def finish_the_load() -> None:
                time.sleep(0.3)
                go_on.set()

            threading.Thread(target=finish_the_load).start()
            waited = client.post(f"/backups/{stage.backup_id}/restore", params={"wait": "true"})
            assert waited.status_code == 200, waited.text
    finally:
        go_on.set()
        worker.join()

    # The load ran first and the restore after it: the table is the backup, and the load's
    # counters still say what it inserted at its time
    assert table_ids(services, "hired_employees") == BACKUP_IDS
    job = services.jobs.get(job_id)
    assert (job.status, job.rows_inserted) == (JobStatus.SUCCEEDED, len(LOAD_IDS))


def test_loads_and_batches_keep_away_while_a_restore_runs(stage: Stage) -> None:
    services = stage.services
    reading = threading.Event()
    go_on = threading.Event()

    def hold_the_restore(_n: int) -> None:
        reading.set()
        go_on.wait(30)

    with serving(services) as url, http(url) as client:
        stage.blob.before_slice = hold_the_restore
        restore = threading.Thread(
            target=lambda: client.post(f"/backups/{stage.backup_id}/restore")
        )
        restore.start()
        try:
            assert reading.wait(30)
            stage.blob.before_slice = None
            # A batch is refused while the restore runs
            batch = client.post(
                "/tables/hired_employees/rows",
                json={
                    "rows": [
                        {
                            "id": 5000,
                            "name": "B",
                            "datetime": "2021-01-01T00:00:00Z",
                            "department_id": 1,
                            "job_id": 1,
                        }
                    ]
                },
            )
            assert batch.status_code == 409, batch.text
            assert batch.json()["tables"] == ["hired_employees"]
            # A load submitted meanwhile is accepted but does not start
            job_id = client.post(
                "/uploads/hired_employees",
                content=hires(LOAD_IDS[:100]),
                headers={"content-type": "text/csv"},
            ).json()["job_id"]
            consumer = build_consumer(services, threading.Event())
            assert consumer.run_once()
            assert services.jobs.get(job_id).status is JobStatus.QUEUED
        finally:
            go_on.set()
            restore.join()

    # Once the restore is done, the load runs on the restored table
    drain(services)
    assert services.jobs.get(job_id).rows_inserted == 100
    assert table_ids(services, "hired_employees") == BACKUP_IDS + LOAD_IDS[:100]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_interleaving_of_a_load_and_a_restore_leaves_a_serial_outcome(
    stage: Stage, seed: int
) -> None:
    services = stage.services
    rng = random.Random(seed)
    stop = threading.Event()

    def work() -> None:
        consumer = build_consumer(services, stop)
        while not stop.is_set():
            consumer.run_once()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        with serving(services) as url, http(url) as client:
            job_id = client.post(
                "/uploads/hired_employees",
                content=hires(LOAD_IDS),
                headers={"content-type": "text/csv"},
            ).json()["job_id"]
            time.sleep(rng.uniform(0, 0.5))
            restored = client.post(f"/backups/{stage.backup_id}/restore", params={"wait": "true"})
            assert restored.status_code == 200, restored.text
            deadline = time.monotonic() + 60
            while not services.jobs.get(job_id).status.terminal:
                assert time.monotonic() < deadline, "the load did not finish"
                time.sleep(0.05)
    finally:
        stop.set()
        worker.join()

    job = services.jobs.get(job_id)
    ids = table_ids(services, "hired_employees")
    assert job.status is JobStatus.SUCCEEDED
    assert job.rows_inserted == len(LOAD_IDS)
    # load then restore, or restore then load: nothing in between
    assert ids in (BACKUP_IDS, BACKUP_IDS + LOAD_IDS), (seed, len(ids))
