"""The job message: which part of which job to ingest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

from common.errors import MalformedMessage
from common.queue import OutgoingMessage


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    part: int

    def encode(self) -> bytes:
        return orjson.dumps({"job_id": self.job_id, "part": self.part})

    @classmethod
    def decode(cls, body: bytes) -> JobMessage:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedMessage(
                f'message body is not JSON: {body[:80]!r}; expected {{"job_id": "...", "part": 0}}'
            ) from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("job_id"), str)
            or not isinstance(data.get("part"), int)
            or isinstance(data.get("part"), bool)
        ):
            raise MalformedMessage(
                f'message body {body[:120]!r} lacks "job_id" (string) and "part" (integer)'
            )
        return cls(data["job_id"], data["part"])

    def first_send(self) -> OutgoingMessage:
        """The first message of a part; its id is stable so a repeated send is dropped."""
        return OutgoingMessage(self.encode(), f"{self.job_id}:{self.part}")

    def later_send(self, at: datetime | None, why: str) -> OutgoingMessage:
        """A further message for the same part (a wait, a replay); its id is new each time."""
        return OutgoingMessage(
            self.encode(), f"{self.job_id}:{self.part}:{why}:{uuid.uuid4().hex[:12]}", at
        )
