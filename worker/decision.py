"""What to do with a delivered message, decided from what handling it came to.

One function, :meth:`DeliveryPolicy.decide`, turns an outcome (or the error raised) and the
delivery count into one of four decisions; the consumer carries them out. Errors say what they
mean for a delivery themselves (:class:`common.errors.Delivery`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from common.errors import Delivery, IngestError
from common.model.outcomes import Done, Outcome, WaitUntil
from common.queue import MAX_DELIVERY_REASON
from common.sql.db import utcnow


@dataclass(frozen=True)
class Complete:
    """Remove the message: its work is done, or is nobody's to do."""

    note: str


@dataclass(frozen=True)
class Reschedule:
    """Send a copy of the message for ``at`` and remove this one."""

    at: datetime
    why: str


@dataclass(frozen=True)
class HandBack:
    """Hold the message ``after_seconds`` (a back-off under its lock), then abandon it, so it
    is delivered again."""

    after_seconds: float
    why: str


@dataclass(frozen=True)
class DeadLetter:
    """Move the message to the dead-letter queue; its job fails with the reason."""

    reason: str
    description: str


Decision = Complete | Reschedule | HandBack | DeadLetter


def describe(error: BaseException) -> str:
    """An error as ``Reason: message``, for logs and dead-letter descriptions."""
    if isinstance(error, IngestError):
        return f"{error.reason}: {error}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class DeliveryPolicy:
    """Deliveries allowed before a retried message is dead-lettered, and the back-off between
    them (doubling from ``backoff_seconds`` up to ``backoff_max_seconds``)."""

    max_deliveries: int
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 30.0

    def decide(self, outcome: Outcome | BaseException, delivery_count: int) -> Decision:
        if isinstance(outcome, Done):
            return Complete(outcome.note)
        if isinstance(outcome, WaitUntil):
            return Reschedule(outcome.at, outcome.why)
        delivery = outcome.delivery if isinstance(outcome, IngestError) else Delivery.RETRY
        if delivery is Delivery.COMPLETE:
            return Complete(describe(outcome))
        if delivery is Delivery.RESUME:
            if delivery_count >= self.max_deliveries:
                # Handed back, it would be dead-lettered though nothing failed: send a copy.
                return Reschedule(utcnow(), describe(outcome))
            return HandBack(0.0, describe(outcome))
        if delivery is Delivery.GIVE_UP:
            assert isinstance(outcome, IngestError)
            return DeadLetter(outcome.reason, str(outcome))
        if delivery_count >= self.max_deliveries:
            return DeadLetter(
                MAX_DELIVERY_REASON,
                f"failed on all {delivery_count} deliveries; last error: {describe(outcome)}",
            )
        wait = self.backoff_seconds * 2 ** (delivery_count - 1)
        return HandBack(min(wait, self.backoff_max_seconds), describe(outcome))
