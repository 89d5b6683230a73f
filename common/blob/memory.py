"""The in-memory blob store: containers of byte strings in one process, for fast tests.

It follows Azure Blob Storage where the local folder is lenient: a blob is written into a
container that exists (:meth:`MemoryBlobStore.ensure_container` first), and a writer cannot be
used again once committed or aborted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from common.blob import BlobInfo
from common.errors import BlobNotFound, PermanentError


@dataclass(frozen=True)
class _Blob:
    data: bytes
    metadata: Mapping[str, str] = field(default_factory=dict)


class MemoryBlobWriter:
    """Collects the blocks written; :meth:`commit` swaps the whole blob in at once."""

    def __init__(self, store: MemoryBlobStore, container: str, name: str) -> None:
        self._store = store
        self._container = container
        self._name = name
        self._blocks: list[bytes] = []
        self._open = True

    def write(self, data: bytes) -> None:
        self._check_open()
        self._blocks.append(bytes(data))

    def commit(self, metadata: Mapping[str, str] | None = None) -> BlobInfo:
        self._check_open()
        blob = _Blob(b"".join(self._blocks), dict(metadata or {}))
        self._store._put(self._container, self._name, blob)
        self._open = False
        self._blocks.clear()
        return BlobInfo(self._name, len(blob.data), dict(blob.metadata))

    def abort(self) -> None:
        self._open = False
        self._blocks.clear()

    def _check_open(self) -> None:
        if not self._open:
            raise PermanentError(
                f"blob {self._container}/{self._name}: the writer was already committed or aborted"
            )


class MemoryBlobStore:
    """A :class:`~common.blob.BlobStore` held in a dictionary; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._containers: dict[str, dict[str, _Blob]] = {}

    def ensure_container(self, container: str) -> None:
        _check_name("container", container)
        with self._lock:
            self._containers.setdefault(container, {})

    def open_writer(self, container: str, name: str) -> MemoryBlobWriter:
        _check_name("blob", name)
        return MemoryBlobWriter(self, container, name)

    def _put(self, container: str, name: str, blob: _Blob) -> None:
        with self._lock:
            blobs = self._containers.get(container)
            if blobs is None:
                raise BlobNotFound(f"container {container} does not exist")
            blobs[name] = blob

    def _get(self, container: str, name: str) -> _Blob:
        with self._lock:
            blob = self._containers.get(container, {}).get(name)
        if blob is None:
            raise BlobNotFound(f"blob {container}/{name} does not exist")
        return blob

    def read_range(
        self,
        container: str,
        name: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 4 * 1024 * 1024,
    ) -> Iterator[bytes]:
        """Lazily, as the other stores: a missing blob raises at the first chunk asked for."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        data = self._get(container, name).data
        stop = len(data) if end is None else min(end, len(data))
        view = memoryview(data)
        for offset in range(start, stop, chunk_size):
            yield bytes(view[offset : min(offset + chunk_size, stop)])

    def info(self, container: str, name: str) -> BlobInfo:
        blob = self._get(container, name)
        return BlobInfo(name, len(blob.data), dict(blob.metadata))

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        with self._lock:
            blobs = self._containers.get(container, {})
            found = sorted(
                ((name, blob) for name, blob in blobs.items() if name.startswith(prefix)),
                key=lambda item: item[0],
            )
        for name, blob in found:
            yield BlobInfo(name, len(blob.data), dict(blob.metadata))

    def delete(self, container: str, name: str) -> None:
        with self._lock:
            self._containers.get(container, {}).pop(name, None)

    def ping(self) -> None:
        """Always answers: nothing to reach."""


def _check_name(kind: str, name: str) -> None:
    if not name:
        raise PermanentError(f"a {kind} needs a name")
