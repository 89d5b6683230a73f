"""Submit a stored upload: record its job and queue one message per part, exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog

from common.errors import IngestError
from common.model.jobs import Job, PartPlan
from common.model.messages import JobMessage
from common.model.options import LoadOptions
from common.queue import JobQueue
from common.stores.jobs import JobStore
from common.stores.sends import JobSends
from common.stores.uploads import UploadFiles

log = structlog.get_logger("ingest.submit")

EMPTY_FILE = "the file is empty"


@dataclass(frozen=True)
class StoredUpload:
    """A file already in the blob store, hashed and cut into parts, waiting for its job."""

    job_id: str
    table: str
    blob_name: str
    sha256: str
    size: int
    original_name: str | None
    parts: list[PartPlan]


@dataclass(frozen=True)
class Submission:
    """How the uploads of one request are to be loaded."""

    force: bool = False
    on_conflict: str = "reject"
    options: LoadOptions = field(default_factory=LoadOptions)


def submit(
    jobs: JobStore,
    sends: JobSends,
    queue: JobQueue,
    uploads: UploadFiles,
    stored: Sequence[StoredUpload],
    how: Submission,
) -> list[tuple[Job, bool]]:
    """Create a job for each stored upload and queue its parts; each job, with whether it is
    new (parents first, as given).

    Without ``force``, identical content for the same table reuses the unfinished or
    succeeded job that holds it, even when the uploads race: the job's deduplication key is
    unique, so one of them creates the job and the others get it and delete their own copy.
    Staged uploads sent together are one group, published together: every job of the group is
    recorded before any message is sent, so none can publish without the others.
    """
    group_id = str(uuid.uuid4()) if how.options.staged and len(stored) > 1 else None
    recorded = [_record(jobs, uploads, upload, how, group_id) for upload in stored]
    for (job, created), upload in zip(recorded, stored, strict=True):
        if created:
            send(sends, queue, uploads, upload, job)
    return recorded


def _record(
    jobs: JobStore,
    uploads: UploadFiles,
    upload: StoredUpload,
    how: Submission,
    group_id: str | None,
) -> tuple[Job, bool]:
    job, created = jobs.create(
        job_id=upload.job_id,
        table=upload.table,
        content_sha256=upload.sha256,
        size_bytes=upload.size,
        original_name=upload.original_name,
        blob_name=upload.blob_name,
        on_conflict=how.on_conflict,
        parts=upload.parts,
        reusable=not how.force,
        warnings=(EMPTY_FILE,) if upload.size == 0 else (),
        options=how.options,
        group_id=group_id,
    )
    if not created:
        uploads.delete(upload.blob_name)
    return job, created


def send(
    sends: JobSends, queue: JobQueue, uploads: UploadFiles, upload: StoredUpload, job: Job
) -> None:
    """Send the new job's messages and note that they went. If the send fails, the job and its
    blob are removed unless a worker's reconciliation already claimed and sent them."""
    announce(sends, queue, job, forget=lambda: uploads.delete(upload.blob_name))


def announce(
    sends: JobSends, queue: JobQueue, job: Job, forget: Callable[[], None] = lambda: None
) -> None:
    """Send the new job's messages and note that they went. If the send fails, the job is
    removed (and ``forget`` called to remove what it alone used) unless a worker's
    reconciliation already claimed and sent them."""
    messages = [JobMessage(job.job_id, i).first_send() for i in range(job.parts)]
    try:
        queue.send(messages)
    except IngestError:
        if sends.delete_unsent(job.job_id):
            forget()
            raise
        # The send took so long that a worker found the job unsent and sent its messages.
        log.warning("job queued by a worker after the upload's send failed", job_id=job.job_id)
        return
    try:
        sends.claim(job.job_id)
    except IngestError as exc:  # the messages are sent; a worker will find it sent them again
        log.warning("job queued but not marked sent", job_id=job.job_id, error=str(exc))
