"""The record of a backup and the catalog of backups, kept in the blob store alone.

Each backup is one blob ``<table>/<backup_id>.avro`` in the backup container; its record travels
as the blob's metadata (short ASCII strings), so a service started on an empty database lists
every backup and can restore from them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog

from common.backup.errors import BackupNotFound
from common.blob import BlobInfo, BlobStore
from common.errors import BlobNotFound
from common.model.catalog import load_order

log = structlog.get_logger("ingest.backup")

BACKUP_ID = re.compile(r"^[0-9a-f]{32}$")
_SUFFIX = ".avro"


@dataclass(frozen=True)
class BackupRecord:
    """What a backup holds and how to check it."""

    backup_id: str
    run_id: str
    table: str
    row_count: int
    byte_size: int
    sha256: str
    schema_version: int
    created_at: datetime  # naive UTC
    last_job_id: str | None

    @property
    def blob_name(self) -> str:
        return blob_name(self.table, self.backup_id)

    def to_metadata(self) -> dict[str, str]:
        """The record as blob metadata: short strings, ASCII, keys valid on Azure."""
        return {
            "backup_id": self.backup_id,
            "run_id": self.run_id,
            "table": self.table,
            "row_count": str(self.row_count),
            "byte_size": str(self.byte_size),
            "sha256": self.sha256,
            "schema_version": str(self.schema_version),
            "created_at": self.created_at.isoformat(timespec="microseconds"),
            "last_job_id": self.last_job_id or "",
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> BackupRecord:
        """The record in a blob's metadata; ``ValueError`` or ``KeyError`` if it is not one."""
        meta = {k.lower(): v for k, v in metadata.items()}
        record = cls(
            backup_id=meta["backup_id"],
            run_id=meta["run_id"],
            table=meta["table"],
            row_count=int(meta["row_count"]),
            byte_size=int(meta["byte_size"]),
            sha256=meta["sha256"],
            schema_version=int(meta["schema_version"]),
            created_at=datetime.fromisoformat(meta["created_at"]).replace(tzinfo=None),
            last_job_id=meta.get("last_job_id") or None,
        )
        if not BACKUP_ID.match(record.backup_id) or record.table not in load_order():
            raise ValueError("not a backup record")
        return record


def blob_name(table: str, backup_id: str) -> str:
    return f"{table}/{backup_id}{_SUFFIX}"


class BackupCatalog:
    """Backups listed, found and deleted in the backup container of a blob store."""

    def __init__(self, blob: BlobStore, container: str) -> None:
        self.blob = blob
        self.container = container

    def _record(self, info: BlobInfo) -> BackupRecord | None:
        try:
            record = BackupRecord.from_metadata(info.metadata)
        except (KeyError, ValueError):
            log.warning("blob in the backup container is not a backup", blob=info.name)
            return None
        if record.blob_name != info.name:
            log.warning("backup record does not match its blob name", blob=info.name)
            return None
        return record

    def all(self, table: str | None = None) -> list[BackupRecord]:
        """Every backup (of ``table``), newest first."""
        prefix = f"{table}/" if table else ""
        found = (self._record(i) for i in self.blob.list(self.container, prefix))
        records = [r for r in found if r is not None]
        records.sort(key=lambda r: (r.created_at, r.backup_id), reverse=True)
        return records

    def get(self, backup_id: str) -> BackupRecord:
        """One backup by id, or :class:`BackupNotFound`."""
        if BACKUP_ID.match(backup_id):
            for table in load_order():
                try:
                    info = self.blob.info(self.container, blob_name(table, backup_id))
                except BlobNotFound:
                    continue
                record = self._record(info)
                if record is not None:
                    return record
        raise BackupNotFound(f"no backup {backup_id!r} in container {self.container!r}")

    def run(self, run_id: str) -> list[BackupRecord]:
        """The backups of one run, parents first, or :class:`BackupNotFound`."""
        records = [r for r in self.all() if r.run_id == run_id]
        if not records:
            raise BackupNotFound(f"no backups of run {run_id!r} in container {self.container!r}")
        newest: dict[str, BackupRecord] = {}
        for record in records:  # newest first: keep the newest per table
            newest.setdefault(record.table, record)
        return [newest[t] for t in load_order() if t in newest]

    def read(self, record: BackupRecord, chunk_size: int = 4 * 1024 * 1024) -> Iterator[bytes]:
        """The bytes of a backup file, streamed."""
        return self.blob.read_range(self.container, record.blob_name, chunk_size=chunk_size)

    def delete(self, record: BackupRecord) -> None:
        self.blob.delete(self.container, record.blob_name)
