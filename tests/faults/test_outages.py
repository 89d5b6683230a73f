"""Outages and poison for real: the database server stopped mid-load, and messages, blobs and
files that can never work, all through the real API and worker processes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.generate import write_hired
from common.queue import OutgoingMessage
from common.queue.sql import SqlJobQueue
from common.sql.db import Database
from tests.e2e.conftest import binary_bytes
from tests.faults.conftest import (
    Fleet,
    file_chunks,
    get_job,
    query,
    table_held,
    table_truth,
    upload,
    wait_for_dead_letter,
    wait_for_job,
    wait_until_blocked,
    write_parents_and_upload,
)
from tests.support.pgcluster import temporary_cluster
from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

OUTAGE_ROWS = 100_000
# Long enough for several failed deliveries at the product's back-off (1, 2, 4 s…).
OUTAGE_SECONDS = 8.0
# A batch request during the outage must be answered well within this.
ANSWER_WITHIN_SECONDS = 10.0

OUTAGE_ENV = {
    "BLOCK_BYTES": "65536",
    # Blocks are cut from reads of UPLOAD_BLOCK_BYTES (4 MiB by default): without this, a
    # block would be 4 MiB whatever CHUNK_BYTES says.
    "BLOB_CHUNK_BYTES": "65536",
    # The product's defaults: 1 s doubling to 30 s between deliveries, 10 deliveries.
    "TRANSIENT_BACKOFF_SECONDS": "1",
    "TRANSIENT_BACKOFF_MAX_SECONDS": "30",
    "MAX_DELIVERY_COUNT": "10",
    # Batch requests retry a database that is down for this long before answering 503; the
    # default (30 s) would outlast the outage and answer 200 instead.
    "REQUEST_RETRY_SECONDS": "2",
}


def _batch(client: httpx.Client, ident: int) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    answer = client.post(
        "/tables/departments/rows", json={"rows": [{"id": ident, "department": "Outage"}]}
    )
    return answer, time.monotonic() - began


def test_database_outage_mid_load(fleet_factory: Any, tmp_path: Path) -> None:
    with temporary_cluster() as cluster:
        fleet: Fleet = fleet_factory(cluster.url, **OUTAGE_ENV)
        fleet.api()
        fleet.worker(0)
        fleet.worker(1)
        (tmp_path / "file").mkdir()
        path = write_hired(tmp_path / "file", OUTAGE_ROWS)
        size = path.stat().st_size
        with httpx.Client(base_url=fleet.base_url, timeout=ANSWER_WITHIN_SECONDS * 3) as client:
            write_parents_and_upload(client, tmp_path / "parents")
            job_id = upload(client, "hired_employees", file_chunks(path), path.name)["job_id"]

            # Given a load under way, its workers stopped inside a commit so that it cannot
            # finish before the outage, however fast the machine,
            deadline = time.monotonic() + 60
            job = get_job(client, job_id)
            while job["bytes_done"] == 0:
                assert job["status"] in ("queued", "running"), job
                assert time.monotonic() < deadline, job
                time.sleep(0.02)
                job = get_job(client, job_id)
            with table_held(cluster.url, "hired_employees"):
                wait_until_blocked(cluster.url, "hired_employees")
                assert 0 < get_job(client, job_id)["bytes_done"] < size

                # when the database server stops (ending every session, the held one too),
                cluster.stop(mode="fast")
            down_at = time.monotonic()
            answers: list[tuple[int, dict[str, str], Any, float]] = []
            ident = 10_000
            while time.monotonic() - down_at < OUTAGE_SECONDS:
                ident += 1
                answer, took = _batch(client, ident)
                body = answer.json() if answer.content else None
                answers.append((answer.status_code, dict(answer.headers), body, took))
                time.sleep(0.5)
            ready = client.get("/readyz")
            cluster.start()

            # then every batch request while it was down got 503 with Retry-After and a problem
            # document, promptly,
            assert answers
            for status, headers, body, took in answers:
                assert status == 503, (status, body)
                assert headers.get("retry-after", "").isdigit(), headers
                assert headers.get("content-type", "").startswith("application/problem+json")
                assert body["status"] == 503 and body["title"] and body["detail"], body
                assert "Traceback" not in body["detail"]
                assert took < ANSWER_WITHIN_SECONDS, took
            assert ready.status_code == 503, ready.text

            # the job finishes once the server is back, with exact counts,
            done = wait_for_job(client, job_id, 120, why=cluster.log_tail())
            assert done["status"] == "succeeded", done
            assert done["rows_read"] == OUTAGE_ROWS, done
            assert done["rows_inserted"] == OUTAGE_ROWS, done
            assert done["rows_rejected"] == 0, done

            # and batches work again.
            answer, _ = _batch(client, 99_999)
            assert answer.status_code == 200, answer.text

        truth = table_truth(cluster.url, "hired_employees")
        assert truth.rows == OUTAGE_ROWS, truth
        assert truth.distinct_ids == OUTAGE_ROWS, truth
        assert truth.id_sum == OUTAGE_ROWS * (OUTAGE_ROWS + 1) // 2, truth
        # No batch row sent during the outage was half-stored.
        assert query(cluster.url, "SELECT COUNT(*) FROM departments WHERE id > 10000") == [(1,)]
        assert query(cluster.url, "SELECT COUNT(*) FROM batch_rejections") == [(0,)]


POISON_ENV = {
    "MAX_DELIVERY_COUNT": "3",
    "TRANSIENT_BACKOFF_SECONDS": "0",
    "TRANSIENT_BACKOFF_MAX_SECONDS": "0",
}


def departments_csv(first: int, count: int) -> bytes:
    return "".join(f"{i},Department {i}\n" for i in range(first, first + count)).encode()


def test_poison_and_permanent_failures_dead_letter(fleet_factory: Any) -> None:
    with postgres_database() as url:
        fleet: Fleet = fleet_factory(url, **POISON_ENV)
        fleet.api()
        with httpx.Client(base_url=fleet.base_url, timeout=30) as client:
            # Given, with no worker running yet: a job whose blob is then deleted,
            gone_body = departments_csv(1, 5)
            gone = upload(client, "departments", gone_body, "gone.csv")
            gone_blob = _blob_of(fleet, url, gone["job_id"])
            gone_blob.unlink()
            # a file that is not text,
            binary = upload(client, "jobs", binary_bytes(), "binary.csv")
            # a job whose blob became a directory (reads fail with an OS error: transient),
            stuck_body = departments_csv(101, 10)
            stuck = upload(client, "departments", stuck_body, "stuck.csv")
            stuck_blob = _blob_of(fleet, url, stuck["job_id"])
            stuck_blob.unlink()
            stuck_blob.mkdir()
            (stuck_blob / "inside").write_text("not the file")
            # and a message that is not JSON, put straight into the queue,
            db = Database.from_url(url)
            try:
                SqlJobQueue(db, "ingest-jobs").send(
                    [OutgoingMessage(b"{this is not json", "poison-1")]
                )
            finally:
                db.dispose()

            # when a worker starts,
            fleet.worker(0)

            # then the poison message is dead-lettered on its first delivery,
            poison = wait_for_dead_letter(client, lambda d: d["message_id"] == "poison-1")
            assert poison["reason"] == "MalformedMessage", poison
            assert poison["delivery_count"] == 1, poison
            assert "not JSON" in poison["description"], poison
            assert poison["job_id"] is None
            # so are the missing blob and the binary file, and their jobs failed with the reason,
            for job, reason in ((gone, "BlobNotFound"), (binary, "NotText")):
                letter = wait_for_dead_letter(client, lambda d, j=job: d["job_id"] == j["job_id"])
                assert letter["reason"] == reason, letter
                assert letter["delivery_count"] == 1, letter
                assert letter["description"], letter
                failed = wait_for_job(client, job["job_id"], 30)
                assert failed["status"] == "failed", failed
                assert failed["error"].startswith(f"{reason}: "), failed
            # and the failure that never heals is dead-lettered after MAX_DELIVERY_COUNT (3).
            letter = wait_for_dead_letter(client, lambda d: d["job_id"] == stuck["job_id"])
            assert letter["reason"] == "MaxDeliveryCountExceeded", letter
            assert letter["delivery_count"] == 3, letter
            assert "BlobStoreUnavailable" in letter["description"], letter
            failed = wait_for_job(client, stuck["job_id"], 30)
            assert failed["status"] == "failed", failed
            assert failed["error"].startswith("MaxDeliveryCountExceeded: "), failed
            assert table_truth(url, "departments").rows == 0

            # Once the causes are fixed, resubmitting completes each job exactly once.
            shutil.rmtree(stuck_blob)
            stuck_blob.write_bytes(stuck_body)
            gone_blob.write_bytes(gone_body)
            for job in (stuck, gone):
                letter = next(d for d in _letters(client) if d["job_id"] == job["job_id"])
                answer = client.post(f"/dead-letters/{letter['id']}/resubmit")
                assert answer.status_code == 202, answer.text
                again = client.post(f"/dead-letters/{letter['id']}/resubmit")
                assert again.status_code == 404, again.text
            for job, rows in ((stuck, 10), (gone, 5)):
                done = wait_for_job(client, job["job_id"], 60)
                assert done["status"] == "succeeded", done
                assert done["rows_inserted"] == rows and done["rows_rejected"] == 0, done
                assert done["error"] is None, done
            remaining = {d["reason"] for d in _letters(client)}
            assert remaining == {"MalformedMessage", "NotText"}, remaining
        truth = table_truth(url, "departments")
        assert truth.rows == truth.distinct_ids == 15, truth
        assert truth.id_sum == sum(range(1, 6)) + sum(range(101, 111)), truth


def _letters(client: httpx.Client) -> list[dict[str, Any]]:
    answer = client.get("/dead-letters", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _blob_of(fleet: Fleet, url: str, job_id: str) -> Path:
    [(name,)] = query(url, "SELECT blob_name FROM ingest_jobs WHERE job_id = :j", j=job_id)
    path = fleet.blob_root / name
    assert path.is_file(), path
    return path
