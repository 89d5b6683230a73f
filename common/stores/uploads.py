"""The uploaded files: one blob per job in the uploads container, named by table and job id.

Everything that writes, reads, lists or deletes an upload goes through :class:`UploadFiles`, as
backups go through :class:`~common.backup.records.BackupCatalog`.
"""

from __future__ import annotations

from collections.abc import Iterator

from common.blob import BlobInfo, BlobStore, BlobWriter


class UploadFiles:
    """The uploads in ``container`` of a blob store."""

    def __init__(self, blob: BlobStore, container: str) -> None:
        self.blob = blob
        self.container = container

    @staticmethod
    def name_for(table: str, job_id: str) -> str:
        """The blob name of a job's file."""
        return f"{table}/{job_id}.csv"

    def open_writer(self, name: str) -> BlobWriter:
        """Start writing an upload; nothing is visible until it is committed."""
        return self.blob.open_writer(self.container, name)

    def read_range(
        self, name: str, start: int = 0, end: int | None = None, chunk_size: int = 4 * 1024**2
    ) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of an upload, in chunks."""
        return self.blob.read_range(self.container, name, start, end, chunk_size)

    def all(self) -> Iterator[BlobInfo]:
        """Every committed upload."""
        return self.blob.list(self.container)

    def delete(self, name: str) -> None:
        """Remove an upload (a missing one is no error)."""
        self.blob.delete(self.container, name)
