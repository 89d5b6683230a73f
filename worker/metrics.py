"""A worker's own metrics (``WORKER_METRICS_PORT``): how long parts take, how messages were
settled, and the in-place retries by cause."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PART_SECONDS = Histogram(
    "ingest_worker_part_seconds",
    "Time spent on one delivery of a job part, by outcome.",
    ["table", "outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SETTLED = Counter("ingest_worker_messages", "Messages settled, by how.", ["settlement", "reason"])
RETRIES = Counter(
    "ingest_worker_retries", "In-place retries of transient errors, by cause.", ["cause"]
)


def count_retry(exc: BaseException) -> None:
    RETRIES.labels(getattr(exc, "reason", type(exc).__name__)).inc()
