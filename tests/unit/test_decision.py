"""The delivery decision alone: what becomes of a message, from what handling it came to and
how many times it has been delivered."""

from __future__ import annotations

from datetime import datetime

import pytest

from common.errors import (
    BlobNotFound,
    ConcurrentUpdate,
    DatabaseUnavailable,
    IngestError,
    JobCancelled,
    LeaseLost,
    MalformedMessage,
    NotText,
    PermanentError,
    QueueUnavailable,
    UnknownJob,
    UnknownTable,
)
from common.model.outcomes import Done, WaitUntil
from common.queue import MAX_DELIVERY_REASON
from common.sql.db import utcnow
from common.usecases.ingest_part import Interrupted
from worker.decision import Complete, DeadLetter, DeliveryPolicy, HandBack, Reschedule

POLICY = DeliveryPolicy(max_deliveries=5, backoff_seconds=1.0, backoff_max_seconds=6.0)


def test_finished_work_completes_the_message_with_its_note() -> None:
    assert POLICY.decide(Done("3 rows inserted"), 1) == Complete("3 rows inserted")


def test_work_that_must_wait_is_rescheduled_for_when_it_can_go_on() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5)

    decision = POLICY.decide(WaitUntil(at, "waiting for departments"), 2)

    assert decision == Reschedule(at, "waiting for departments")


@pytest.mark.parametrize(
    "error",
    [LeaseLost("worker-b took part 0 over"), JobCancelled("cancelled by an operator")],
    ids=["lease lost", "job cancelled"],
)
def test_work_that_is_nobody_elses_to_do_completes_the_message(error: IngestError) -> None:
    decision = POLICY.decide(error, 1)

    assert decision == Complete(f"{error.reason}: {error}")


@pytest.mark.parametrize("delivery_count", [1, 3])
def test_a_stopping_worker_hands_the_message_back_at_once(delivery_count: int) -> None:
    error = Interrupted("stopped at byte 4096, line 120")

    decision = POLICY.decide(error, delivery_count)

    assert decision == HandBack(0.0, "Interrupted: stopped at byte 4096, line 120")


def test_a_worker_stopping_on_the_last_delivery_sends_a_copy_rather_than_fail_the_job() -> None:
    # Handing the message back on its last allowed delivery would dead-letter it, failing the
    # job although nothing went wrong: it is sent again for now and this delivery completed.
    before = utcnow()

    decision = POLICY.decide(Interrupted("stopped at byte 4096, line 120"), 5)

    assert isinstance(decision, Reschedule)
    assert decision.why == "Interrupted: stopped at byte 4096, line 120"
    assert before <= decision.at <= utcnow()


@pytest.mark.parametrize(
    "error",
    [
        BlobNotFound("blob historic/x.csv does not exist"),
        UnknownTable("no table named 'salaries'"),
        MalformedMessage("message body is not JSON"),
        UnknownJob("no job 42"),
        NotText("byte 7 is not UTF-8"),
        PermanentError("something retrying cannot fix"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_permanent_error_dead_letters_at_once_with_its_own_reason(
    error: PermanentError,
) -> None:
    decision = POLICY.decide(error, 1)

    assert decision == DeadLetter(error.reason, str(error))


@pytest.mark.parametrize(
    ("delivery_count", "wait"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 6.0)],  # doubling, then capped at 6 s
)
def test_a_transient_error_hands_back_after_a_doubling_back_off(
    delivery_count: int, wait: float
) -> None:
    error = DatabaseUnavailable("database 'ingest' is not currently available")

    decision = POLICY.decide(error, delivery_count)

    assert decision == HandBack(wait, f"DatabaseUnavailable: {error}")


def test_the_back_off_never_passes_its_cap_however_many_deliveries() -> None:
    policy = DeliveryPolicy(max_deliveries=100, backoff_seconds=0.5, backoff_max_seconds=30.0)

    decisions = [policy.decide(QueueUnavailable(), n) for n in range(1, 100)]

    waits = [d.after_seconds for d in decisions if isinstance(d, HandBack)]
    assert len(waits) == len(decisions)
    assert sorted(set(waits)) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert waits[-1] == 30.0


def test_the_last_allowed_delivery_dead_letters_with_the_last_error() -> None:
    error = ConcurrentUpdate("another worker wrote part 0 first")

    decision = POLICY.decide(error, 5)

    assert decision == DeadLetter(
        MAX_DELIVERY_REASON,
        "failed on all 5 deliveries; last error: "
        "ConcurrentUpdate: another worker wrote part 0 first",
    )


def test_a_permanent_error_on_the_last_delivery_keeps_its_own_reason() -> None:
    assert POLICY.decide(UnknownJob("no job 42"), 5) == DeadLetter("UnknownJob", "no job 42")


def test_a_bug_is_retried_like_a_transient_error_and_named_by_its_type() -> None:
    bug = RuntimeError("list index out of range")

    assert POLICY.decide(bug, 2) == HandBack(2.0, "RuntimeError: list index out of range")
    assert POLICY.decide(bug, 5) == DeadLetter(
        MAX_DELIVERY_REASON,
        "failed on all 5 deliveries; last error: RuntimeError: list index out of range",
    )


def test_waits_set_to_zero_hand_back_at_once() -> None:
    policy = DeliveryPolicy(max_deliveries=3, backoff_seconds=0.0, backoff_max_seconds=0.0)

    assert policy.decide(DatabaseUnavailable("busy"), 2) == HandBack(
        0.0, "DatabaseUnavailable: busy"
    )
