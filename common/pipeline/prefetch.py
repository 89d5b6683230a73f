"""Run an iterator ahead in a background thread, so reading and parsing the next block
overlaps with writing the current one (Arrow, the drivers and file reads release the GIL)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


@contextmanager
def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[Iterator[T]]:
    """Yield an iterator over ``items`` produced up to ``depth`` items ahead.

    An exception in the producer is raised in the consumer at the item where it happened;
    leaving the block early stops the producer after its current item.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()

    def consume() -> Iterator[T]:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    try:
        yield consume()
    finally:
        stop.set()
        thread.join()
