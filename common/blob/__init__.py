"""The blob store port: named byte objects in containers, written in blocks, read by range."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its name, size in bytes and user metadata."""

    name: str
    size: int
    metadata: Mapping[str, str] = field(default_factory=dict)


class BlobWriter(Protocol):
    """A blob being written. Nothing is visible under its name until :meth:`commit`."""

    def write(self, data: bytes) -> None:
        """Append ``data``; large writes may be sent on as they come."""

    def commit(self, metadata: Mapping[str, str] | None = None) -> BlobInfo:
        """Make the blob visible under its name, atomically, with ``metadata``."""

    def abort(self) -> None:
        """Drop everything written; the name keeps whatever it held before (or nothing)."""


class BlobStore(Protocol):
    """Containers of blobs. Raises :class:`BlobNotFound` for a missing blob and
    :class:`BlobStoreUnavailable` when the store cannot be reached."""

    def ensure_container(self, container: str) -> None:
        """Create ``container`` if it does not exist."""

    def open_writer(self, container: str, name: str) -> BlobWriter:
        """Start writing blob ``name``; see :class:`BlobWriter`."""

    def read_range(
        self,
        container: str,
        name: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 4 * 1024 * 1024,
    ) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` of the blob in chunks of at most ``chunk_size``."""

    def info(self, container: str, name: str) -> BlobInfo:
        """Size and metadata of one blob."""

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        """Every committed blob whose name starts with ``prefix``, in name order."""

    def delete(self, container: str, name: str) -> None:
        """Remove a blob; removing a missing blob is not an error."""

    def ping(self) -> None:
        """Raise :class:`BlobStoreUnavailable` unless the store answers."""
