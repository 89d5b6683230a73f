"""The use cases' collaborators on the embedded database and the in-memory queue and blob
store: no server, no process, a fresh SQLite file per test."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common.blob.memory import MemoryBlobStore
from common.model.messages import JobMessage
from common.pipeline.cutting import PartCutter
from common.queue.memory import MemoryJobQueue
from common.sql.db import Database
from common.stores.claims import DeadLetterClaims
from common.stores.job_states import JobStates
from common.stores.jobs import JobStore
from common.stores.sends import JobSends
from common.stores.uploads import UploadFiles
from common.usecases.submit import StoredUpload

UPLOADS = "historic"


@dataclass
class Embedded:
    db: Database
    blob: MemoryBlobStore
    files: UploadFiles
    queue: MemoryJobQueue
    jobs: JobStore
    sends: JobSends
    states: JobStates
    claims: DeadLetterClaims

    def store_upload(
        self, table: str, content: bytes, *, part_bytes: int = 1 << 20
    ) -> StoredUpload:
        """``content`` written to the blob store and cut into parts as the API does."""
        job_id = str(uuid.uuid4())
        name = UploadFiles.name_for(table, job_id)
        cutter = PartCutter(part_bytes)
        writer = self.files.open_writer(name)
        cutter.feed(content)
        writer.write(content)
        writer.commit()
        return StoredUpload(
            job_id=job_id,
            table=table,
            blob_name=name,
            sha256=cutter.sha256,
            size=cutter.size,
            original_name=f"{table}.csv",
            parts=cutter.parts(),
        )

    def queued_parts(self) -> list[tuple[str, int]]:
        """The (job, part) of every message in the queue, waiting, scheduled or locked."""
        return [
            (message.job_id, message.part)
            for message in map(JobMessage.decode, self.queue.peek_active())
        ]

    def uploads(self) -> list[str]:
        return [info.name for info in self.blob.list(UPLOADS)]


@pytest.fixture
def embedded(tmp_path: Path, migrated_sqlite_file: Path) -> Iterator[Embedded]:
    path = tmp_path / "ingest.db"
    shutil.copyfile(migrated_sqlite_file, path)
    db = Database.from_url(f"sqlite:///{path}")
    blob = MemoryBlobStore()
    blob.ensure_container(UPLOADS)
    jobs = JobStore(db)
    yield Embedded(
        db=db,
        blob=blob,
        files=UploadFiles(blob, UPLOADS),
        queue=MemoryJobQueue(lock_duration_seconds=30.0, max_delivery_count=3),
        jobs=jobs,
        sends=JobSends(db),
        states=JobStates(db, jobs),
        claims=DeadLetterClaims(db),
    )
    db.dispose()
