"""Delivery semantics of the real worker: at-least-once messages, exactly-once rows.

Each test uploads through the API, runs the worker's consumer loop in-process and then compares
the database with a truth computed here from the file with the ``csv`` module.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.blob import BlobStore
from common.bootstrap import Services
from common.errors import BlobStoreUnavailable, DatabaseUnavailable, QueueUnavailable
from common.model.jobs import JobStatus
from common.model.messages import JobMessage
from common.queue import MAX_DELIVERY_REASON, OutgoingMessage
from common.usecases import ingest_part
from tests.support.faults import HookedParts, SlicedBlobStore, write_blob
from tests.support.flow import (
    api_client,
    count,
    drain,
    drain_in_threads,
    job,
    service_set,
    stored_rejections,
    table_rows,
    upload,
    vacuums_and_analyzes,
)
from tests.support.reconciling import reconciler
from worker.main import build_consumer


@dataclass(frozen=True)
class Truth:
    """What ingesting a file must leave behind, computed without the service's code."""

    data: bytes
    lines: int
    kept: dict[int, str]  # id → the text of the line that must be inserted
    rejected: list[int]  # lines that must be rejected, each once
    valid: dict[int, dict[int, str]]  # id → {line: text} of every line valid on its own


def truth_of(lines: list[str], width: int) -> Truth:
    kept: dict[int, str] = {}
    rejected: list[int] = []
    valid: dict[int, dict[int, str]] = {}
    for number, text in enumerate(lines, start=1):
        fields = next(csv.reader([text]), [])
        ok = (
            len(fields) == width
            and all(f.strip() for f in fields)
            and fields[0].strip().isdigit()
            and int(fields[0]) > 0
        )
        if ok:
            valid.setdefault(int(fields[0]), {})[number] = text
        if ok and int(fields[0]) not in kept:
            kept[int(fields[0])] = text
        else:
            rejected.append(number)
    return Truth(("\n".join(lines) + "\n").encode(), len(lines), kept, rejected, valid)


def departments_file(rows: int) -> Truth:
    """Departments with an empty name now and then, ids repeated and blank lines."""
    lines = []
    for n in range(1, rows + 1):
        if n % 97 == 0:
            lines.append(f"{n},")
        elif n % 113 == 0:
            lines.append(f"{n - 1},Again {n}")
        elif n % 211 == 0:
            lines.append("")
        else:
            lines.append(f"{n},Department {n}")
    return truth_of(lines, 2)


def assert_ingested_exactly_once(services: Services, job_id: str, truth: Truth) -> None:
    """The table holds each kept row once, every bad line is stored once, the counters agree."""
    done = services.jobs.get(job_id)
    assert done.status is JobStatus.SUCCEEDED, done.error
    assert (done.rows_read, done.rows_inserted, done.rows_rejected) == (
        truth.lines,
        len(truth.kept),
        len(truth.rejected),
    )
    assert done.bytes_done == len(truth.data)
    rows = table_rows(services, "departments")
    assert {r["id"]: f"{r['id']},{r['department']}" for r in rows} == truth.kept
    assert [line for line, _ in stored_rejections(services, job_id)] == truth.rejected


@dataclass
class Rig:
    services: Services
    blob: SlicedBlobStore
    parts: HookedParts


@pytest.fixture
def rig(tmp_path: Path, database_url: str) -> Iterator[Rig]:
    """Services with small blocks, sliced blob reads and hooks around every checkpoint."""
    sliced: list[SlicedBlobStore] = []

    def wrap(store: BlobStore) -> BlobStore:
        sliced.append(SlicedBlobStore(store))
        return sliced[0]

    with service_set(tmp_path, database_url, wrap_blob=wrap, block_bytes=2048) as services:
        hooked = HookedParts(services.parts)
        services.parts = hooked
        yield Rig(services, sliced[0], hooked)


def upload_departments(services: Services, truth: Truth, **params: Any) -> str:
    with api_client(services) as client:
        job_id: str = upload(client, "departments", truth.data, **params)["job_id"]
    return job_id


# --- exactly-once resume -------------------------------------------------------------------


def _blob_fails_mid_part(rig: Rig, stop: threading.Event) -> None:
    def fail_next_read(_n: int) -> None:
        rig.blob.before_slice = None
        raise BlobStoreUnavailable("connection reset while reading the blob")

    def arm(n: int) -> None:
        if n == 4:
            rig.blob.before_slice = fail_next_read

    rig.parts.after_advance = arm


def _worker_told_to_stop(rig: Rig, stop: threading.Event) -> None:
    rig.parts.after_advance = lambda n: stop.set() if n == 4 else None


def _worker_dies_inside_a_commit(rig: Rig, stop: threading.Event) -> None:
    def die(n: int) -> None:
        if n == 5:
            raise RuntimeError("the process was killed")

    rig.parts.before_advance = die


def _database_keeps_failing_a_commit(rig: Rig, stop: threading.Event) -> None:
    def fail(n: int) -> None:
        if 5 <= n <= 7:  # every in-place retry of the fifth block
            raise DatabaseUnavailable("connection lost")

    rig.parts.before_advance = fail


INTERRUPTIONS: dict[str, Callable[[Rig, threading.Event], None]] = {
    "blob-read-fails": _blob_fails_mid_part,
    "shutdown": _worker_told_to_stop,
    "killed-mid-commit": _worker_dies_inside_a_commit,
    "commit-retries-exhausted": _database_keeps_failing_a_commit,
}


@pytest.mark.parametrize("interruption", sorted(INTERRUPTIONS))
def test_an_interrupted_part_resumes_from_its_checkpoint_exactly_once(
    rig: Rig, interruption: str
) -> None:
    # Given a file of about 30 blocks with bad lines and repeated ids, uploaded as one job
    truth = departments_file(3000)
    job_id = upload_departments(rig.services, truth)
    stop = threading.Event()
    consumer = build_consumer(rig.services, stop)
    INTERRUPTIONS[interruption](rig, stop)

    # When the first delivery is interrupted after four blocks were committed
    assert consumer.run_once()
    partial = rig.services.jobs.get(job_id)

    # Then the checkpoint accounts for exactly the rows that are in the database
    assert partial.status is JobStatus.RUNNING
    assert 0 < partial.rows_read < truth.lines
    assert count(rig.services, "departments") == partial.rows_inserted > 0
    assert len(stored_rejections(rig.services, job_id)) == partial.rows_rejected
    assert rig.services.queue.active_count() == 1

    # And when the message is delivered again, the job ends with every row exactly once
    rig.parts.before_advance = rig.parts.after_advance = None
    stop.clear()
    drain(rig.services)
    assert_ingested_exactly_once(rig.services, job_id, truth)
    assert rig.services.jobs.get(job_id).attempts == 2


def test_a_transient_commit_failure_is_retried_in_place(rig: Rig) -> None:
    truth = departments_file(600)
    job_id = upload_departments(rig.services, truth)

    def fail_once(n: int) -> None:
        if n == 2:
            raise DatabaseUnavailable("deadlock victim")

    rig.parts.before_advance = fail_once

    drain(rig.services)

    assert_ingested_exactly_once(rig.services, job_id, truth)
    assert rig.services.jobs.get(job_id).attempts == 1


def test_a_duplicated_message_ingests_the_part_once(rig: Rig) -> None:
    # Given a job whose message was sent twice (a retried send, say)
    truth = departments_file(800)
    job_id = upload_departments(rig.services, truth)
    rig.services.queue.send([JobMessage(job_id, 0).later_send(None, "duplicate")])
    assert rig.services.queue.active_count() == 2

    # When a worker takes both
    processed = drain(rig.services)

    # Then the part was ingested once and the second copy was simply completed
    assert processed == 2
    assert_ingested_exactly_once(rig.services, job_id, truth)


def test_duplicated_messages_taken_by_two_workers_at_once_ingest_the_part_once(
    tmp_path: Path, database_url: str
) -> None:
    # Short locks: the worker that finds the part leased waits for the lease to run out
    with service_set(
        tmp_path, database_url, block_bytes=2048, lock_duration_seconds=1.0
    ) as services:
        truth = departments_file(3000)
        job_id = upload_departments(services, truth)
        services.queue.send([JobMessage(job_id, 0).later_send(None, "duplicate")])

        drain_in_threads(services, workers=2)

        assert_ingested_exactly_once(services, job_id, truth)


def test_several_parts_taken_by_two_workers_give_exact_counts(
    tmp_path: Path, database_url: str
) -> None:
    # Given a file of 4000 departments cut into parts of about 4 KiB
    truth = departments_file(4000)
    with service_set(tmp_path, database_url, part_bytes=4096, block_bytes=1024) as services:
        job_id = upload_departments(services, truth)
        created = services.jobs.get(job_id)
        assert created.parts > 10
        parts = services.jobs.parts(job_id)
        assert all(truth.data[p.start_offset - 1 : p.start_offset] == b"\n" for p in parts[1:])

        # When two workers share its messages
        drain_in_threads(services, workers=2)

        # Then every part is done and the rows are in exactly once
        assert services.jobs.get(job_id).parts_done == created.parts
        done = services.jobs.get(job_id)
        assert done.status is JobStatus.SUCCEEDED
        assert (done.rows_read, done.rows_inserted, done.rows_rejected) == (
            truth.lines,
            len(truth.kept),
            len(truth.rejected),
        )
        # (parts run in parallel, so of two lines with one id in different parts either may win)
        inserted_lines = set()
        for row in table_rows(services, "departments"):
            candidates = {t: n for n, t in truth.valid[row["id"]].items()}
            inserted_lines.add(candidates[f"{row['id']},{row['department']}"])
        assert len(inserted_lines) == len(truth.kept) == len(truth.valid)
        everything_else = sorted(set(range(1, truth.lines + 1)) - inserted_lines)
        assert [line for line, _ in stored_rejections(services, job_id)] == everything_else


def test_two_uploads_of_the_same_ids_ingested_at_once_insert_each_id_once(
    tmp_path: Path, database_url: str
) -> None:
    # Given the same rows uploaded twice (forced), so two workers write the same ids at once
    truth = departments_file(2000)
    with service_set(tmp_path, database_url, block_bytes=1024) as services:
        first = upload_departments(services, truth)
        second = upload_departments(services, truth, force="true")
        assert first != second

        # When two workers ingest both jobs concurrently
        drain_in_threads(services, workers=2)

        # Then each id is in the table once, and between them the jobs account for every line
        a, b = services.jobs.get(first), services.jobs.get(second)
        assert a.status is b.status is JobStatus.SUCCEEDED
        assert a.rows_read == b.rows_read == truth.lines
        assert a.rows_inserted + b.rows_inserted == len(truth.kept)
        assert a.rows_rejected + b.rows_rejected == 2 * truth.lines - len(truth.kept)
        assert len(table_rows(services, "departments")) == len(truth.kept)
        for job_id in (first, second):
            lines = [line for line, _ in stored_rejections(services, job_id)]
            assert len(lines) == len(set(lines)) == services.jobs.get(job_id).rows_rejected


# --- waiting for parents -------------------------------------------------------------------


def test_employees_wait_for_earlier_department_and_job_uploads(services: Services) -> None:
    # Given departments, jobs and then employees uploaded, while a worker is busy with departments
    with api_client(services) as client:
        deps = upload(client, "departments", b"1,Sales\n2,Legal\n")
        jobs = upload(client, "jobs", b"1,Clerk\n")
        hires = upload(
            client,
            "hired_employees",
            b"1,Ada,2021-01-05T10:00:00Z,1,1\n2,Bob,2021-04-05T10:00:00Z,2,1\n",
        )
        busy = services.queue.receive(1)
        assert busy is not None and JobMessage.decode(busy.body).job_id == deps["job_id"]

        # When another worker comes to the employees before departments finished
        consumer = build_consumer(services, threading.Event())
        assert consumer.run_once()  # jobs
        assert consumer.run_once()  # employees: must wait

        # Then the employees job is still queued (not failed) and its message comes back later
        waiting = job(client, hires["job_id"])
        assert (waiting["status"], waiting["rows_read"], waiting["error"]) == ("queued", 0, None)
        assert job(client, jobs["job_id"])["status"] == "succeeded"
        assert services.queue.active_count() == 2
        assert client.get("/dead-letters").json()["total"] == 0

        # And once departments are done the employees go in, with no unknown references
        services.queue.abandon(busy)
        drain(services)
        done = job(client, hires["job_id"])
        assert (done["status"], done["rows_inserted"], done["rows_rejected"]) == (
            "succeeded",
            2,
            0,
        )
        finished = datetime.fromisoformat(job(client, deps["job_id"])["finished_at"])
        assert finished <= datetime.fromisoformat(done["started_at"])


# --- dead letters --------------------------------------------------------------------------


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with api_client(services) as c:
        yield c


def test_a_job_whose_file_is_gone_is_dead_lettered_and_can_be_replayed(
    tmp_path: Path, database_url: str
) -> None:
    truth = departments_file(500)
    with (
        service_set(tmp_path, database_url, part_bytes=2048) as services,
        api_client(services) as client,
    ):
        # Given a job of several parts whose file was deleted from the blob store
        created = upload(client, "departments", truth.data)
        assert created["parts"] > 1
        blob_name = services.jobs.get(created["job_id"]).blob_name
        container = services.settings.blob_container_name_historic
        services.blob.delete(container, blob_name)

        # When a worker takes its messages
        drain(services)

        # Then the first one is dead-lettered at once and the job is failed with the reason
        failed = job(client, created["job_id"])
        assert failed["status"] == "failed"
        assert failed["error"].startswith("BlobNotFound")
        letters = client.get("/dead-letters").json()
        assert letters["total"] == 1
        [letter] = letters["items"]
        assert (letter["job_id"], letter["reason"], letter["delivery_count"]) == (
            created["job_id"],
            "BlobNotFound",
            1,
        )
        assert blob_name in letter["description"]
        assert client.get(f"/dead-letters/{letter['id']}").json()["reason"] == "BlobNotFound"
        assert count(services, "departments") == 0

        # And when the file is put back and the dead letter resubmitted
        write_blob(services.blob, container, blob_name, truth.data)
        resubmitted = client.post(f"/dead-letters/{letter['id']}/resubmit")
        assert resubmitted.status_code == 202
        assert job(client, created["job_id"])["status"] == "queued"
        drain(services)

        # Then the job succeeds with every row exactly once, and no dead letter is left
        assert_ingested_exactly_once(services, created["job_id"], truth)
        assert job(client, created["job_id"])["error"] is None
        assert client.get("/dead-letters").json()["total"] == 0


def test_a_message_that_is_not_json_is_dead_lettered_and_can_be_purged(
    services: Services, client: TestClient
) -> None:
    # Given a poison message on the queue
    services.queue.send([OutgoingMessage(b"\x00not json at all", "poison-1")])

    # When a worker takes it
    drain(services)

    # Then it is dead-lettered as malformed, with no job attached
    [letter] = client.get("/dead-letters").json()["items"]
    assert (letter["reason"], letter["job_id"], letter["message_id"]) == (
        "MalformedMessage",
        None,
        "poison-1",
    )
    assert "not JSON" in letter["description"]

    # And purging it removes it for good
    assert client.delete(f"/dead-letters/{letter['id']}").status_code == 204
    assert client.get("/dead-letters").json() == {
        "items": [],
        "total": 0,
        "limit": 100,
        "offset": 0,
    }
    gone = client.delete(f"/dead-letters/{letter['id']}")
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")


def test_a_message_for_a_job_that_does_not_exist_is_dead_lettered(
    services: Services, client: TestClient
) -> None:
    services.queue.send([JobMessage("no-such-job", 0).first_send()])

    drain(services)

    [letter] = client.get("/dead-letters").json()["items"]
    assert (letter["reason"], letter["job_id"]) == ("UnknownJob", "no-such-job")


def test_a_transient_error_that_never_heals_dead_letters_after_max_deliveries(
    tmp_path: Path, database_url: str
) -> None:
    def broken(store: BlobStore) -> BlobStore:
        sliced = SlicedBlobStore(store)

        def fail(_n: int) -> None:
            raise BlobStoreUnavailable("the storage account is throttling")

        sliced.before_slice = fail
        return sliced

    with (
        service_set(tmp_path, database_url, wrap_blob=broken, max_delivery_count=3) as services,
        api_client(services) as client,
    ):
        # Given a job whose file cannot be read, however often it is tried
        created = upload(client, "departments", b"1,Sales\n")

        # When workers keep taking its message
        processed = drain(services)

        # Then it was delivered the maximum number of times, then dead-lettered
        assert processed == 3
        [letter] = client.get("/dead-letters").json()["items"]
        assert (letter["reason"], letter["delivery_count"], letter["job_id"]) == (
            MAX_DELIVERY_REASON,
            3,
            created["job_id"],
        )
        assert "throttling" in letter["description"]
        # And its job is failed with that reason, after three attempts
        failed = job(client, created["job_id"])
        assert failed["status"] == "failed"
        assert failed["error"].startswith(MAX_DELIVERY_REASON)
        assert failed["attempts"] == 3
        assert services.queue.active_count() == 0


def test_an_unknown_dead_letter_is_a_404_problem(client: TestClient) -> None:
    for response in (
        client.get("/dead-letters/12345"),
        client.post("/dead-letters/12345/resubmit"),
        client.delete("/dead-letters/not-a-number"),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


# --- after a large load ---------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_large_load_leaves_postgresql_ready_for_index_only_reports(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a threshold the first upload stays under and the second reaches
    monkeypatch.setattr(ingest_part, "REFRESH_AFTER_ROWS", 500)
    small_job = upload_departments(rig.services, departments_file(300))
    drain(rig.services)
    assert rig.services.jobs.get(small_job).status is JobStatus.SUCCEEDED
    assert vacuums_and_analyzes(rig.services, "departments") == (0, 0)

    # When a job inserting more rows than that succeeds
    large = truth_of([f"{1000 + i},Department {i}" for i in range(800)], 2)
    job_id = upload_departments(rig.services, large)
    drain(rig.services)

    # Then the table was vacuumed and analyzed once, after its rows were in
    assert rig.services.jobs.get(job_id).status is JobStatus.SUCCEEDED
    assert vacuums_and_analyzes(rig.services, "departments") == (1, 1)


# --- an API that dies between creating a job and queueing it -------------------------------


def test_a_job_its_api_never_queued_is_queued_by_a_worker_and_ingested_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an upload whose API died after creating the job, before sending its messages
    # (nothing it would have done after that point happens),
    orphan_truth = departments_file(600)
    with monkeypatch.context() as dying:
        dying.setattr(rig.services.queue, "send", lambda _messages: None)
        dying.setattr(rig.services.sends, "claim", lambda _job_id: None)
        upload_departments(rig.services, orphan_truth)
    [orphan] = rig.services.jobs.page(10, 0, None, "departments")[0]
    assert orphan.status is JobStatus.QUEUED
    assert rig.services.queue.active_count() == 0
    # and another upload, of jobs, that went through normally.
    with api_client(rig.services) as client:
        body = "".join(f"{i},Job {i}\n" for i in range(1, 51)).encode()
        sent_id = upload(client, "jobs", body)["job_id"]
    assert rig.services.queue.active_count() == 1

    # While the orphan is young, a worker leaves it alone (its API may still be sending).
    reconciler(rig.services, unsent_after_seconds=60.0).run()
    assert rig.services.queue.active_count() == 1

    # Once it is old enough, a worker sends its messages, and only its, once.
    for _ in range(2):
        reconciler(rig.services, unsent_after_seconds=0.0).run()
        assert rig.services.queue.active_count() == 1 + orphan.parts

    drain(rig.services)
    assert_ingested_exactly_once(rig.services, orphan.job_id, orphan_truth)
    assert rig.services.jobs.get(sent_id).rows_inserted == 50


def _historic_blobs(services: Services) -> list[str]:
    container = services.settings.blob_container_name_historic
    return [b.name for b in services.blob.list(container)]


def test_an_upload_whose_messages_cannot_be_sent_leaves_nothing_behind(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(_messages: list[OutgoingMessage]) -> None:
        raise QueueUnavailable("the queue is down")

    monkeypatch.setattr(rig.services.queue, "send", unreachable)
    with api_client(rig.services) as client:
        answer = client.post(
            "/uploads/departments", content=b"1,Sales\n", headers={"content-type": "text/csv"}
        )
    assert answer.status_code == 503, answer.text
    assert rig.services.jobs.page(10, 0, None, None)[1] == 0
    assert _historic_blobs(rig.services) == []


def test_an_upload_whose_slow_send_failed_after_a_worker_queued_it_is_kept(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a send that fails only after a worker, finding the job unsent, claimed it and
    # sent its messages itself,
    sends = rig.services.queue.send

    def overtaken(messages: list[OutgoingMessage]) -> None:
        job_id = JobMessage.decode(messages[0].body).job_id
        assert rig.services.sends.claim(job_id)
        sends(messages)
        raise QueueUnavailable("the send timed out")

    monkeypatch.setattr(rig.services.queue, "send", overtaken)
    truth = departments_file(300)
    with api_client(rig.services) as client:
        answer = client.post(
            "/uploads/departments", content=truth.data, headers={"content-type": "text/csv"}
        )
    monkeypatch.setattr(rig.services.queue, "send", sends)

    # then the upload is accepted, its file kept, and its rows loaded once.
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    assert len(_historic_blobs(rig.services)) == 1
    drain(rig.services)
    assert_ingested_exactly_once(rig.services, job_id, truth)
