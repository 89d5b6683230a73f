"""Service-wide figures read from the database at scrape time, so they are right whatever the
number of API servers and workers."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from common.errors import IngestError
from common.model.catalog import load_order
from common.model.jobs import JobStatus
from common.queue import JobQueue
from common.sql.db import Database
from common.sql.schema import batches as batches_t
from common.sql.schema import ingest_jobs as jobs_t
from common.sql.schema import job_parts as parts_t


class ServiceCollector(Collector):
    def __init__(self, db: Database, queue: JobQueue) -> None:
        self.db = db
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        rows = CounterMetricFamily(
            "ingest_rows", "Rows of uploads by table and outcome.", labels=["table", "outcome"]
        )
        batch_rejected = CounterMetricFamily(
            "ingest_batch_rows_rejected",
            "Rows of JSON batches rejected, by table.",
            labels=["table"],
        )
        jobs = GaugeMetricFamily("ingest_jobs", "Jobs by status.", labels=["status"])
        up = GaugeMetricFamily("ingest_metrics_up", "1 when the database answered the scrape.")
        try:
            with self.db.read() as conn:
                per_table = {
                    r.table_name: r
                    for r in conn.execute(
                        select(
                            jobs_t.c.table_name,
                            func.coalesce(func.sum(parts_t.c.rows_read), 0).label("read"),
                            func.coalesce(func.sum(parts_t.c.rows_inserted), 0).label("inserted"),
                            func.coalesce(func.sum(parts_t.c.rows_rejected), 0).label("rejected"),
                        )
                        .select_from(jobs_t.join(parts_t, parts_t.c.job_id == jobs_t.c.job_id))
                        .group_by(jobs_t.c.table_name)
                    )
                }
                statuses: dict[str, int] = dict(
                    conn.execute(
                        select(jobs_t.c.status, func.count()).group_by(jobs_t.c.status)
                    ).all()
                )
                batches: dict[str, int] = dict(
                    conn.execute(
                        select(
                            batches_t.c.table_name, func.sum(batches_t.c.rows_rejected)
                        ).group_by(batches_t.c.table_name)
                    ).all()
                )
        except IngestError:
            up.add_metric([], 0)
            yield up
            return
        for table in load_order():
            r = per_table.get(table)
            for outcome in ("read", "inserted", "rejected"):
                rows.add_metric([table, outcome], float(getattr(r, outcome) if r else 0))
            batch_rejected.add_metric([table], float(batches.get(table, 0)))
        for status in JobStatus:
            jobs.add_metric([status.value], float(statuses.get(status.value, 0)))
        up.add_metric([], 1)
        yield from (rows, batch_rejected, jobs, up)
        try:
            depth = self.queue.active_count()
            _, dead = self.queue.list_dead_letters(limit=1, offset=0)
        except IngestError:
            return
        yield GaugeMetricFamily(
            "ingest_queue_depth", "Messages waiting or in progress.", value=depth
        )
        yield GaugeMetricFamily(
            "ingest_dead_letters", "Messages in the dead-letter queue.", value=dead
        )
