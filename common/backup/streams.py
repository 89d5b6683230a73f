"""File-like adapters between fastavro and the blob port, counting and hashing what passes."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

from common.blob import BlobWriter


class BlobSink:
    """A write-only, unseekable file over a :class:`BlobWriter` that hashes every byte."""

    def __init__(self, writer: BlobWriter) -> None:
        self._writer = writer
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._writer.write(bytes(data))
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing to do: the blob writer sends blocks on as they fill."""

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class ChunkSource(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (a blob read by range), hashed as read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = next(self._chunks, b"")
            self._hash.update(self._pending)
            self.size += len(self._pending)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def drain(self) -> None:
        """Read to the end, so that :attr:`sha256` covers the whole blob."""
        while self.readinto(bytearray(1 << 20)):
            pass

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def buffered(chunks: Iterator[bytes]) -> tuple[ChunkSource, io.BufferedReader]:
    """A hashing source and a buffered reader over it, for fastavro."""
    source = ChunkSource(chunks)
    return source, io.BufferedReader(source, buffer_size=1 << 20)
