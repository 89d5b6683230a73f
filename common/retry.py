"""Retry policy as data: one frozen object feeds tenacity; tests set the waits to zero."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from common.errors import TransientError

T = TypeVar("T")
log = structlog.get_logger("ingest.retry")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry :class:`TransientError` up to ``attempts`` times with exponential waits."""

    attempts: int = 4
    initial_wait_seconds: float = 0.2
    max_wait_seconds: float = 5.0
    on_retry: Callable[[BaseException], None] | None = None

    def _log(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and self.on_retry is not None:
            self.on_retry(exc)
        log.warning(
            "transient error, retrying",
            attempt=state.attempt_number,
            error=str(exc),
            error_type=type(exc).__name__,
        )

    def retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(
                multiplier=self.initial_wait_seconds,
                max=self.max_wait_seconds,
            ),
            reraise=True,
            before_sleep=self._log,
        )

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying transient failures; the last one propagates."""
        for attempt in self.retrying():
            with attempt:
                return fn()
        raise AssertionError("unreachable")  # pragma: no cover
