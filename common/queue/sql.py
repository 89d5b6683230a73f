"""The embedded queue: a table in the service's own database with Service Bus semantics.

Claims are atomic: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (``READPAST`` on SQL Server), a write
transaction on SQLite. A locked message is hidden by pushing ``visible_at`` to the lock's expiry,
so an expired lock makes it visible again with no sweeper.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, false, func, select, true, update

from common.errors import LockLost, MessageNotFound, TransientError
from common.queue import (
    MAX_DELIVERY_REASON,
    DeadLetter,
    OutgoingMessage,
    ReceivedMessage,
    fit_dead_letter_text,
)
from common.sql.db import Database, utcnow
from common.sql.schema import queue_messages as qm

_POLL_SECONDS = 0.1
_MAX_SEQ = 2**31  # the sequence column is a 32-bit integer on PostgreSQL and SQL Server
# "= false", not "IS false": SQL Server has no boolean type, and "IS 0" is not T-SQL.
_LIVE = qm.c.dead_lettered == false()
_DEAD = qm.c.dead_lettered == true()


class SqlJobQueue:
    """A :class:`~common.queue.JobQueue` stored in the ``queue_messages`` table."""

    def __init__(
        self,
        db: Database,
        queue_name: str,
        lock_duration_seconds: float = 60.0,
        max_delivery_count: int = 10,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.queue_name = queue_name
        self.lock_duration_seconds = lock_duration_seconds
        self.max_delivery_count = max_delivery_count
        self._clock = clock

    @property
    def _lock(self) -> timedelta:
        return timedelta(seconds=self.lock_duration_seconds)

    def send(self, messages: list[OutgoingMessage]) -> None:
        if not messages:
            return
        now = self._clock()
        with self.db.write() as conn:
            conn.execute(
                qm.insert(),
                [
                    {
                        "queue": self.queue_name,
                        "message_id": m.message_id,
                        "body": m.body,
                        "enqueued_at": now,
                        "visible_at": m.scheduled_at or now,
                        "delivery_count": 0,
                        "dead_lettered": False,
                    }
                    for m in messages
                ],
            )

    def receive(self, max_wait_seconds: float) -> ReceivedMessage | None:
        deadline = time.monotonic() + max_wait_seconds
        while True:
            try:
                message = self._claim()
            except TransientError:
                # A busy or briefly unreachable database: keep trying until the wait is over.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(_POLL_SECONDS)
                continue
            if message is not None or time.monotonic() >= deadline:
                return message
            time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def _claim(self) -> ReceivedMessage | None:
        with self.db.write() as conn:
            while True:
                now = self._clock()
                row = conn.execute(
                    select(qm)
                    .where(
                        qm.c.queue == self.queue_name,
                        _LIVE,
                        qm.c.visible_at <= now,
                    )
                    .order_by(qm.c.seq)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    return None
                if row.delivery_count >= self.max_delivery_count:
                    self._to_dead_letters(
                        conn,
                        row.seq,
                        MAX_DELIVERY_REASON,
                        f"delivered {row.delivery_count} times without being completed",
                    )
                    continue
                token = str(uuid.uuid4())
                until = now + self._lock
                conn.execute(
                    update(qm)
                    .where(qm.c.seq == row.seq)
                    .values(
                        lock_token=token,
                        locked_until=until,
                        visible_at=until,
                        delivery_count=row.delivery_count + 1,
                    )
                )
                return ReceivedMessage(
                    message_id=row.message_id,
                    body=bytes(row.body),
                    delivery_count=row.delivery_count + 1,
                    sequence_number=row.seq,
                    enqueued_at=row.enqueued_at,
                    locked_until=until,
                    lock_token=token,
                    handle=row.seq,
                )

    def _locked(self, message: ReceivedMessage) -> Any:
        return (
            qm.c.seq == message.sequence_number,
            qm.c.lock_token == message.lock_token,
            qm.c.locked_until > self._clock(),
            _LIVE,
        )

    def _settle(self, conn: Connection, message: ReceivedMessage, statement: Any) -> None:
        if conn.execute(statement).rowcount != 1:
            raise LockLost(
                f"the lock on message {message.message_id} expired or was taken by another receiver"
            )

    def renew_lock(self, message: ReceivedMessage) -> datetime:
        until = self._clock() + self._lock
        with self.db.write() as conn:
            self._settle(
                conn,
                message,
                update(qm)
                .where(*self._locked(message))
                .values(locked_until=until, visible_at=until),
            )
        return until

    def complete(self, message: ReceivedMessage) -> None:
        with self.db.write() as conn:
            self._settle(conn, message, delete(qm).where(*self._locked(message)))

    def abandon(self, message: ReceivedMessage) -> None:
        with self.db.write() as conn:
            self._settle(
                conn,
                message,
                update(qm)
                .where(*self._locked(message))
                .values(lock_token=None, locked_until=None, visible_at=self._clock()),
            )

    def dead_letter(self, message: ReceivedMessage, reason: str, description: str) -> None:
        with self.db.write() as conn:
            self._settle(
                conn,
                message,
                update(qm)
                .where(*self._locked(message))
                .values(**self._dead_letter_values(reason, description)),
            )

    def _dead_letter_values(self, reason: str, description: str) -> dict[str, Any]:
        return {
            "dead_lettered": True,
            "dead_letter_reason": fit_dead_letter_text(reason),
            "dead_letter_description": fit_dead_letter_text(description),
            "dead_lettered_at": self._clock(),
            "lock_token": None,
            "locked_until": None,
        }

    def _to_dead_letters(self, conn: Connection, seq: int, reason: str, description: str) -> None:
        conn.execute(
            update(qm)
            .where(qm.c.seq == seq)
            .values(**self._dead_letter_values(reason, description))
        )

    def _dead_letter_from_row(self, row: Row[Any]) -> DeadLetter:
        return DeadLetter(
            id=str(row.seq),
            message_id=row.message_id,
            body=bytes(row.body),
            reason=row.dead_letter_reason or "",
            description=row.dead_letter_description or "",
            delivery_count=row.delivery_count,
            enqueued_at=row.enqueued_at,
            dead_lettered_at=row.dead_lettered_at,
        )

    def _dead_letters(self) -> Any:
        return select(qm).where(qm.c.queue == self.queue_name, _DEAD)

    def list_dead_letters(self, limit: int, offset: int) -> tuple[list[DeadLetter], int]:
        with self.db.read() as conn:
            rows = conn.execute(
                self._dead_letters().order_by(qm.c.seq).limit(limit).offset(offset)
            ).all()
            total = conn.execute(
                select(func.count()).select_from(qm).where(qm.c.queue == self.queue_name, _DEAD)
            ).scalar_one()
        return [self._dead_letter_from_row(r) for r in rows], int(total)

    def _find_dead_letter(self, conn: Connection, dead_letter_id: str) -> Row[Any]:
        try:
            seq = int(dead_letter_id)
        except ValueError:
            raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}") from None
        if not 0 < seq < _MAX_SEQ:  # beyond the column's range no message can have it
            raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}")
        row = conn.execute(self._dead_letters().where(qm.c.seq == seq)).first()
        if row is None:
            raise MessageNotFound(f"no dead letter with id {dead_letter_id!r}")
        return row

    def get_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        with self.db.read() as conn:
            return self._dead_letter_from_row(self._find_dead_letter(conn, dead_letter_id))

    def resubmit_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        # A new message with a new sequence number, as Service Bus sends a copy: a dead letter's
        # id then never comes back for another message.
        with self.db.write() as conn:
            row = self._find_dead_letter(conn, dead_letter_id)
            now = self._clock()
            conn.execute(
                qm.insert().values(
                    queue=self.queue_name,
                    message_id=row.message_id,
                    body=row.body,
                    enqueued_at=now,
                    visible_at=now,
                    delivery_count=0,
                    dead_lettered=False,
                )
            )
            conn.execute(delete(qm).where(qm.c.seq == row.seq))
        return self._dead_letter_from_row(row)

    def purge_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        with self.db.write() as conn:
            row = self._find_dead_letter(conn, dead_letter_id)
            conn.execute(delete(qm).where(qm.c.seq == row.seq))
        return self._dead_letter_from_row(row)

    def active_count(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(qm).where(qm.c.queue == self.queue_name, _LIVE)
                ).scalar_one()
            )

    def peek_active(self) -> list[bytes]:
        with self.db.read() as conn:
            return [
                bytes(body)
                for body in conn.execute(
                    select(qm.c.body).where(qm.c.queue == self.queue_name, _LIVE).order_by(qm.c.seq)
                ).scalars()
            ]

    def ping(self) -> None:
        self.db.ping()

    def close(self) -> None:
        """The engine belongs to the caller; nothing to release here."""
