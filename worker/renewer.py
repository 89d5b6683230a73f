"""Keeps a message's lock and its part's lease alive while the part is ingested."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from common.errors import IngestError, LockLost
from common.queue import JobQueue, ReceivedMessage

log = structlog.get_logger("ingest.worker")


class LockRenewer:
    """Renews every ``interval`` seconds in a thread; sets ``lost`` when the lock is gone."""

    def __init__(
        self,
        queue: JobQueue,
        message: ReceivedMessage,
        interval: float,
        renew_lease: Callable[[], bool],
    ) -> None:
        self._queue = queue
        self._message = message
        self._interval = interval
        self._renew_lease = renew_lease
        self._done = threading.Event()
        self.lost = threading.Event()
        self._context = structlog.contextvars.get_contextvars()
        self._thread = threading.Thread(target=self._run, name="lock-renewer", daemon=True)

    def __enter__(self) -> LockRenewer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(**self._context)
        while not self._done.wait(self._interval):
            try:
                self._queue.renew_lock(self._message)
                if not self._renew_lease():
                    log.warning("part lease taken over by another worker")
                    self.lost.set()
                    return
            except LockLost:
                log.warning("message lock lost; stopping this delivery")
                self.lost.set()
                return
            except IngestError as exc:
                # A blip: the lock is still good until it expires; try again next tick.
                log.warning("lock renewal failed", error=str(exc))
