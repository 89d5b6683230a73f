"""Fault injection for worker tests: blob reads that stop, fail or never work, and commits
that crash between writing rows and moving the checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Connection

from common.blob import BlobInfo, BlobStore, BlobWriter
from common.model.jobs import Part, Progress
from common.stores.parts import PartLeases


class SlicedBlobStore:
    """A blob store whose reads come in small slices, calling ``before_slice(n)`` before the
    n-th slice (1-based, counted over every read) so a test can act mid-stream."""

    def __init__(self, inner: BlobStore, slice_bytes: int = 1024) -> None:
        self.inner = inner
        self.slice_bytes = slice_bytes
        self.slices = 0
        self.before_slice: Callable[[int], None] | None = None

    def read_range(
        self,
        container: str,
        name: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 4 * 1024 * 1024,
    ) -> Iterator[bytes]:
        for chunk in self.inner.read_range(container, name, start, end, chunk_size):
            for i in range(0, len(chunk), self.slice_bytes):
                self.slices += 1
                if self.before_slice is not None:
                    self.before_slice(self.slices)
                yield chunk[i : i + self.slice_bytes]

    def ensure_container(self, container: str) -> None:
        self.inner.ensure_container(container)

    def open_writer(self, container: str, name: str) -> BlobWriter:
        return self.inner.open_writer(container, name)

    def info(self, container: str, name: str) -> BlobInfo:
        return self.inner.info(container, name)

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        return self.inner.list(container, prefix)

    def delete(self, container: str, name: str) -> None:
        self.inner.delete(container, name)

    def ping(self) -> None:
        self.inner.ping()


class HookedParts(PartLeases):
    """Part leases that call ``before_advance(n)`` inside the commit transaction, after the
    block's rows were written and before the checkpoint moves, and ``after_advance(n)`` once it
    moved (``n`` counts calls, from 1). A hook that raises rolls the whole block back."""

    def __init__(
        self,
        inner: PartLeases,
        before_advance: Callable[[int], None] | None = None,
        after_advance: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(inner.db)
        self.before_advance = before_advance
        self.after_advance = after_advance
        self.calls = 0

    def advance(
        self,
        conn: Connection,
        part: Part,
        owner: str,
        expected_offset: int,
        progress: Progress,
        lease_seconds: float,
    ) -> bool:
        self.calls += 1
        if self.before_advance is not None:
            self.before_advance(self.calls)
        done = super().advance(conn, part, owner, expected_offset, progress, lease_seconds)
        if self.after_advance is not None:
            self.after_advance(self.calls)
        return done


def write_blob(store: BlobStore, container: str, name: str, data: bytes) -> None:
    writer = store.open_writer(container, name)
    writer.write(data)
    writer.commit({})
