"""Retry policy as data: one frozen object decides how often and how long to retry; tests set
the waits to zero or hand in their own clock and sleep."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from common.errors import TransientError

T = TypeVar("T")
log = structlog.get_logger("ingest.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry :class:`TransientError` with exponentially growing waits, each drawn at random
    below its cap ("full jitter", so that many clients hit by the same outage do not come back
    in step): ``initial_wait_seconds``, doubling, at most ``max_wait_seconds``.

    It stops after ``attempts`` tries, or, with ``deadline_seconds`` (then ``attempts`` may be
    None), when the next wait would end past that many seconds since the first try; the last
    error propagates.
    """

    attempts: int | None = 4
    initial_wait_seconds: float = 0.2
    max_wait_seconds: float = 5.0
    deadline_seconds: float | None = None
    on_retry: Callable[[BaseException], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random

    def __post_init__(self) -> None:
        if self.attempts is None and self.deadline_seconds is None:
            raise ValueError("a retry policy needs attempts or a deadline")

    def wait_before(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first retry)."""
        cap = min(self.max_wait_seconds, self.initial_wait_seconds * 2.0 ** (retry - 1))
        return float(cap * self.jitter())

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transient failures; the last one propagates."""
        started = self.clock()
        tries = 0
        while True:
            tries += 1
            try:
                return fn()
            except TransientError as exc:
                wait = self.wait_before(tries)
                if self.attempts is not None and tries >= self.attempts:
                    raise
                if (
                    self.deadline_seconds is not None
                    and self.clock() - started + wait > self.deadline_seconds
                ):
                    raise
                if self.on_retry is not None:
                    self.on_retry(exc)
                log.warning(
                    "transient error, retrying",
                    attempt=tries,
                    wait_seconds=round(wait, 3),
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
                self.sleep(wait)
