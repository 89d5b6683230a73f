"""The retry policy alone, on a clock and a sleep of the test's own: no real waiting."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from common.bootstrap import build_services
from common.errors import DatabaseUnavailable, PermanentError
from common.retry import RetryPolicy
from common.settings import Settings


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception | None = None) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error or DatabaseUnavailable("database 'ingest' is not currently available")
        return "done"

    return calls, fn


def test_waits_grow_exponentially_each_drawn_below_its_cap() -> None:
    time = FakeTime()
    draws = iter([1.0, 0.5, 0.25, 1.0, 1.0])
    policy = RetryPolicy(
        attempts=6,
        initial_wait_seconds=0.2,
        max_wait_seconds=1.0,
        sleep=time.sleep,
        clock=time.clock,
        jitter=lambda: next(draws),
    )
    calls, fn = failing(5)

    assert policy.call(fn) == "done"

    assert len(calls) == 6
    assert time.waits == pytest.approx([0.2, 0.2, 0.2, 1.0, 1.0])  # caps 0.2 0.4 0.8 1 1


def test_a_deadline_keeps_retrying_past_any_count_and_then_gives_up_in_time() -> None:
    time = FakeTime()
    policy = RetryPolicy(
        attempts=None,
        initial_wait_seconds=0.2,
        max_wait_seconds=5.0,
        deadline_seconds=30.0,
        sleep=time.sleep,
        clock=time.clock,
        jitter=lambda: 1.0,
    )
    calls, fn = failing(10**6)

    with pytest.raises(DatabaseUnavailable):
        policy.call(fn)

    assert len(calls) > 4
    assert sum(time.waits) <= 30.0
    assert 30.0 - sum(time.waits) < 5.0  # it used the deadline, not a fixed count


def test_a_reconfiguration_shorter_than_the_deadline_is_ridden_out() -> None:
    time = FakeTime()
    policy = RetryPolicy(attempts=None, deadline_seconds=30.0, sleep=time.sleep, clock=time.clock)
    calls, fn = failing(8)

    assert policy.call(fn) == "done"
    assert len(calls) == 9


def test_permanent_errors_are_not_retried() -> None:
    time = FakeTime()
    policy = RetryPolicy(attempts=5, sleep=time.sleep, clock=time.clock)
    calls, fn = failing(1, PermanentError("string or binary data would be truncated"))

    with pytest.raises(PermanentError):
        policy.call(fn)
    assert len(calls) == 1 and time.waits == []


def test_a_policy_needs_a_bound() -> None:
    with pytest.raises(ValueError, match="attempts or a deadline"):
        RetryPolicy(attempts=None)


def test_requests_retry_until_the_configured_deadline_and_workers_a_few_times(
    tmp_path: object,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        request_retry_seconds=12.5,
        retry_attempts=3,
    )
    services = build_services(settings)
    try:
        assert services.request_retry.deadline_seconds == 12.5
        assert services.request_retry.attempts is None
        assert (services.retry.attempts, services.retry.deadline_seconds) == (3, None)
    finally:
        services.close()
