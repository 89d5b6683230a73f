"""Metrics agree with the database, and every API answer carries its request id."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SAMPLE_DATA
from tests.support.flow import api_client, count, drain, service_set


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_scraped_totals_equal_the_rows_in_the_tables(tmp_path: Path, database_url: str) -> None:
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        files = {
            t: (f"{t}.csv", (SAMPLE_DATA / f"{t}.csv").read_bytes())
            for t in ("departments", "jobs", "hired_employees")
        }
        assert client.post("/uploads", files=files).status_code == 202
        drain(services)
        client.post("/tables/departments/rows", json={"rows": [{"id": 1, "department": "Dup"}]})

        answer = client.get("/metrics")
        samples = _samples(answer.text)

        assert answer.status_code == 200
        for table in ("departments", "jobs", "hired_employees"):
            inserted = samples[("ingest_rows_total", (("outcome", "inserted"), ("table", table)))]
            assert inserted == count(services, table)
        assert (
            samples[("ingest_rows_total", (("outcome", "rejected"), ("table", "hired_employees")))]
            == 70
        )
        assert samples[("ingest_batch_rows_rejected_total", (("table", "departments"),))] == 1
        assert samples[("ingest_jobs", (("status", "succeeded"),))] == 3
        assert samples[("ingest_queue_depth", ())] == 0
        assert samples[("ingest_dead_letters", ())] == 0
        assert any(name == "ingest_api_request_seconds_count" for name, _ in samples)


def test_each_answer_echoes_or_invents_a_request_id(tmp_path: Path, database_url: str) -> None:
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        given = client.get("/jobs", headers={"X-Request-ID": "trace-42"})
        invented = client.get("/jobs/nope")

    assert given.headers["x-request-id"] == "trace-42"
    assert len(invented.headers["x-request-id"]) == 32


def test_the_dashboard_and_alerts_only_use_metrics_the_service_exports(
    tmp_path: Path, database_url: str
) -> None:
    import re

    from prometheus_client import REGISTRY, generate_latest

    import worker.metrics  # noqa: F401  registers the worker's metrics

    docs = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    used = set(
        re.findall(
            r"ingest_[a-z_]+",
            (docs / "alerts.yml").read_text() + (docs / "grafana-dashboard.json").read_text(),
        )
    )
    with service_set(tmp_path, database_url) as services, api_client(services) as client:
        client.get("/jobs")
        exported = client.get("/metrics").text + generate_latest(REGISTRY).decode()
    names = set(re.findall(r"^# TYPE (ingest_[a-z_]+)", exported, re.MULTILINE))
    suffixed = {f"{n}{s}" for n in names for s in ("", "_total", "_bucket", "_count", "_sum")}
    assert used <= suffixed, used - suffixed
