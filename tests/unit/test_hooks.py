"""The hooks that ride along with the consumer loop: the metrics each settled message counts
under, and the heartbeat file the container's health check watches."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY

from common.queue import MAX_DELIVERY_REASON, ReceivedMessage
from worker.decision import Complete, DeadLetter, Decision, HandBack, Reschedule
from worker.hooks import Heartbeat, Metrics

MESSAGE = ReceivedMessage(
    message_id="job-1:0",
    body=b'{"job_id": "job-1", "part": 0}',
    delivery_count=1,
    sequence_number=1,
    enqueued_at=datetime(2030, 1, 1),
    locked_until=datetime(2030, 1, 1, 0, 1),
    lock_token="token",
)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("decision", "settlement", "reason", "outcome"),
    [
        pytest.param(Complete("part ingested"), "complete", "done", "done", id="ingested"),
        pytest.param(Complete("job already failed"), "complete", "done", "done", id="job over"),
        pytest.param(
            Complete("LeaseLost: worker-b took part 0 over"),
            "complete",
            "LeaseLost",
            "LeaseLost",
            id="lease lost",
        ),
        pytest.param(
            Complete("JobCancelled: by an operator"),
            "complete",
            "JobCancelled",
            "JobCancelled",
            id="cancelled",
        ),
        pytest.param(
            Reschedule(datetime(2030, 1, 1), "waiting for departments"),
            "complete",
            "done",
            "waiting",
            id="rescheduled",
        ),
        pytest.param(
            HandBack(2.0, "DatabaseUnavailable: busy"),
            "abandon",
            "DatabaseUnavailable",
            "DatabaseUnavailable",
            id="handed back",
        ),
        pytest.param(
            HandBack(0.0, "Interrupted: stopped at byte 0"),
            "abandon",
            "Interrupted",
            "Interrupted",
            id="interrupted",
        ),
        pytest.param(
            DeadLetter("BlobNotFound", "gone"),
            "dead_letter",
            "BlobNotFound",
            "BlobNotFound",
            id="dead-lettered",
        ),
        pytest.param(
            DeadLetter(MAX_DELIVERY_REASON, "failed on all 10 deliveries"),
            "dead_letter",
            MAX_DELIVERY_REASON,
            MAX_DELIVERY_REASON,
            id="out of deliveries",
        ),
    ],
)
def test_a_settled_message_is_counted_by_how_and_why_and_timed_by_table_and_outcome(
    decision: Decision, settlement: str, reason: str, outcome: str
) -> None:
    settled_before = sample("ingest_worker_messages_total", settlement=settlement, reason=reason)
    timed = {"table": "departments", "outcome": outcome}
    count_before = sample("ingest_worker_part_seconds_count", **timed)
    sum_before = sample("ingest_worker_part_seconds_sum", **timed)

    Metrics().after_settle(MESSAGE, "departments", decision, 1.5)

    assert sample("ingest_worker_messages_total", settlement=settlement, reason=reason) == (
        settled_before + 1
    )
    assert sample("ingest_worker_part_seconds_count", **timed) == count_before + 1
    assert sample("ingest_worker_part_seconds_sum", **timed) == pytest.approx(sum_before + 1.5)


def test_the_heartbeat_creates_its_file_on_the_first_loop(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"

    Heartbeat(beat).before_receive()

    assert beat.exists()


def test_the_heartbeat_freshens_its_file_on_every_loop(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    beat.touch()
    os.utime(beat, (1_000_000, 1_000_000))  # as if the last loop was long ago

    Heartbeat(beat).before_receive()

    assert beat.stat().st_mtime > 1_000_000


def test_a_heartbeat_that_cannot_touch_its_file_logs_and_lets_the_loop_go_on(
    tmp_path: Path,
) -> None:
    beat = tmp_path / "no such folder" / "heartbeat"

    with structlog.testing.capture_logs() as logs:
        Heartbeat(beat).before_receive()  # does not raise

    assert not beat.exists()
    [entry] = [e for e in logs if e["event"] == "cannot touch the heartbeat file"]
    assert entry["log_level"] == "warning"
    assert "No such file or directory" in entry["error"]
