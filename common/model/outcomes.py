"""What handling a job message can come to, besides an error: the consumer settles by these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Done:
    """The message's work is finished (or was already): complete it."""

    note: str


@dataclass(frozen=True)
class WaitUntil:
    """Not yet: send the message again for ``at`` and complete this delivery."""

    at: datetime
    why: str


Outcome = Done | WaitUntil
