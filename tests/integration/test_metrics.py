"""Metrics agree with the database and the queue, a worker serves its own, and every API answer
carries its request id."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from common.sql.db import Database
from common.sql.migrate import upgrade
from tests.conftest import SAMPLE_DATA
from tests.e2e.conftest import binary_bytes
from tests.support.flow import api_client, count, drain, service_set, upload
from tests.support.pgcluster import temporary_cluster
from tests.support.processes import worker

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
TABLES = ("departments", "jobs", "hired_employees")
WAIT_SECONDS = 60.0


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: TestClient | httpx.Client) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return _samples(answer.text)


def sample_file(table: str) -> bytes:
    return (SAMPLE_DATA / f"{table}.csv").read_bytes()


def test_scraped_totals_equal_the_rows_in_the_tables(tmp_path: Path, database_url: str) -> None:
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        files = {t: (f"{t}.csv", sample_file(t)) for t in TABLES}
        assert client.post("/uploads", files=files).status_code == 202
        drain(services)
        client.post("/tables/departments/rows", json={"rows": [{"id": 1, "department": "Dup"}]})

        samples = scrape(client)

        for table in TABLES:
            inserted = samples[("ingest_rows_total", (("outcome", "inserted"), ("table", table)))]
            assert inserted == count(services, table)
        assert (
            samples[("ingest_rows_total", (("outcome", "rejected"), ("table", "hired_employees")))]
            == 70
        )
        assert samples[("ingest_batch_rows_rejected_total", (("table", "departments"),))] == 1
        assert samples[("ingest_jobs", (("status", "succeeded"),))] == 3
        assert samples[("ingest_metrics_up", ())] == 1
        assert any(name == "ingest_api_request_seconds_count" for name, _ in samples)


def test_queue_depth_and_dead_letters_count_what_waits_and_what_failed(
    tmp_path: Path, database_url: str
) -> None:
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        # Given two files and one that is not text, queued while no worker runs
        for table in ("departments", "jobs"):
            upload(client, table, sample_file(table))
        upload(client, "jobs", binary_bytes(), filename="binary.csv")

        waiting = scrape(client)

        assert waiting[("ingest_queue_depth", ())] == 3
        assert waiting[("ingest_jobs", (("status", "queued"),))] == 3
        assert waiting[("ingest_dead_letters", ())] == 0

        # When a worker has taken every message
        drain(services)
        done = scrape(client)

        # Then the queue is empty and the binary file's message is in the dead-letter queue
        assert done[("ingest_queue_depth", ())] == 0
        assert done[("ingest_dead_letters", ())] == 1
        assert done[("ingest_jobs", (("status", "succeeded"),))] == 2
        assert done[("ingest_jobs", (("status", "failed"),))] == 1


def test_a_scrape_while_the_database_is_down_says_so(tmp_path: Path) -> None:
    with temporary_cluster() as cluster:
        db = Database.from_url(cluster.url)
        upgrade(db)
        db.dispose()
        with service_set(tmp_path, cluster.url) as services, api_client(services) as client:
            # Given a service whose database answers
            assert scrape(client)[("ingest_metrics_up", ())] == 1

            # When the database server stops, a scrape still answers, and says it is down
            cluster.stop()
            down = scrape(client)
            assert down == {("ingest_metrics_up", ()): 0} | {
                key: value for key, value in down.items() if key[0].startswith("ingest_api_")
            }

            # And once it is back, the figures are back too
            cluster.start()
            assert scrape(client)[("ingest_metrics_up", ())] == 1


def wait_until_settled(client: TestClient, job_ids: list[str]) -> None:
    """Until every job finished and no message is left in the queue: by then the worker has
    counted each message it settled."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        statuses = {client.get(f"/jobs/{j}").json()["status"] for j in job_ids}
        if statuses <= {"succeeded", "failed"} and scrape(client)[("ingest_queue_depth", ())] == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"jobs not settled in {WAIT_SECONDS:.0f} s: {statuses}")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_serves_its_own_metrics_and_dashboards_use_only_exported_ones(
    tmp_path: Path, database_url: str
) -> None:
    # Given a real worker process serving its metrics on WORKER_METRICS_PORT, sharing the
    # database and the blob folder with the API,
    with (
        service_set(tmp_path, database_url) as services,
        api_client(services) as client,
        worker(tmp_path, database_url=database_url, metrics=True) as consumer,
    ):
        # when it ingests two files and dead-letters one that is not text,
        jobs = [upload(client, t, sample_file(t))["job_id"] for t in ("departments", "jobs")]
        jobs.append(upload(client, "jobs", binary_bytes(), filename="binary.csv")["job_id"])
        wait_until_settled(client, jobs)
        api_text = client.get("/metrics").text
        with httpx.Client(base_url=f"http://127.0.0.1:{consumer.port}", timeout=10) as http:
            answer = http.get("/metrics")
    assert answer.status_code == 200
    own = _samples(answer.text)

    # then the worker counted each settlement and timed each part, by table and outcome,
    settled = "ingest_worker_messages_total"
    assert own[(settled, (("reason", "done"), ("settlement", "complete")))] == 2
    assert own[(settled, (("reason", "NotText"), ("settlement", "dead_letter")))] == 1
    parts = {
        labels: value for (name, labels), value in own.items() if name.endswith("seconds_count")
    }
    assert parts == {
        (("outcome", "done"), ("table", "departments")): 1,
        (("outcome", "done"), ("table", "jobs")): 1,
        (("outcome", "NotText"), ("table", "jobs")): 1,
    }
    # and every metric the dashboard and the alerts use is one the API or a worker exports.
    docs = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    used = set(
        re.findall(
            r"ingest_[a-z_]+",
            (docs / "alerts.yml").read_text() + (docs / "grafana-dashboard.json").read_text(),
        )
    )
    exported = api_text + answer.text
    names = set(re.findall(r"^# TYPE (ingest_[a-z_]+)", exported, re.MULTILINE))
    suffixed = {f"{n}{s}" for n in names for s in ("", "_total", "_bucket", "_count", "_sum")}
    assert used <= suffixed, used - suffixed


def test_each_answer_echoes_or_invents_a_request_id(tmp_path: Path, database_url: str) -> None:
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        given = client.get("/jobs", headers={"X-Request-ID": "trace-42"})
        invented = client.get("/jobs/nope")

    assert given.headers["x-request-id"] == "trace-42"
    assert len(invented.headers["x-request-id"]) == 32
