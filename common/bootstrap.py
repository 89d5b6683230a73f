"""Wire the adapters once, at the edge: nothing connects at import time."""

from __future__ import annotations

from dataclasses import dataclass

from common.backup.records import BackupCatalog
from common.blob import BlobStore
from common.blob.local import LocalBlobStore
from common.model import catalog
from common.model.catalog_file import load_catalog
from common.queue import JobQueue
from common.queue.sql import SqlJobQueue
from common.retry import RetryPolicy
from common.settings import Settings
from common.sql.db import Database
from common.stores.claims import DeadLetterClaims
from common.stores.job_states import JobStates
from common.stores.jobs import JobStore
from common.stores.parts import PartLeases
from common.stores.rejections import RejectionStore
from common.stores.sends import JobSends
from common.stores.uploads import UploadFiles
from common.usecases.dead_letters import DeadLetters


@dataclass
class Services:
    """Everything the API and the workers talk to, built from one :class:`Settings`."""

    settings: Settings
    db: Database
    blob: BlobStore
    queue: JobQueue
    jobs: JobStore
    parts: PartLeases
    sends: JobSends
    states: JobStates
    rejections: RejectionStore
    uploads: UploadFiles
    backups: BackupCatalog
    retry: RetryPolicy  # a worker's retries in place: a few, then the message is handed back
    request_retry: RetryPolicy  # an API request's: until its deadline, then 503
    dead_letters: DeadLetters

    def close(self) -> None:
        self.queue.close()
        self.db.dispose()


def build_blob_store(settings: Settings) -> BlobStore:
    """Azure Blob Storage when configured, else the local folder."""
    if settings.blob_backend == "azure":
        from common.blob.azure import AzureBlobStore

        return AzureBlobStore.from_settings(settings)
    return LocalBlobStore(settings.blob_root)


def build_queue(settings: Settings, db: Database) -> JobQueue:
    """Azure Service Bus when configured, else the queue table in the database."""
    if settings.queue_backend == "servicebus":
        from common.queue.servicebus import ServiceBusJobQueue

        return ServiceBusJobQueue.from_settings(settings)
    return SqlJobQueue(
        db,
        settings.queue_name,
        lock_duration_seconds=settings.lock_duration_seconds,
        max_delivery_count=settings.max_delivery_count,
    )


def build_services(
    settings: Settings,
    *,
    blob: BlobStore | None = None,
    queue: JobQueue | None = None,
    retry: RetryPolicy | None = None,
) -> Services:
    """``retry``, when given, replaces both retry policies (tests pass one that never waits)."""
    catalog.activate(load_catalog(settings.catalog_file))
    db = Database.from_url(settings.sqlalchemy_url)
    blob = blob or build_blob_store(settings)
    for container in (settings.blob_container_name_historic, settings.blob_container_name_backup):
        blob.ensure_container(container)
    queue = queue or build_queue(settings, db)
    jobs = JobStore(db)
    states = JobStates(db, jobs)
    return Services(
        settings=settings,
        db=db,
        blob=blob,
        queue=queue,
        jobs=jobs,
        parts=PartLeases(db),
        sends=JobSends(db),
        states=states,
        rejections=RejectionStore(db),
        uploads=UploadFiles(blob, settings.blob_container_name_historic),
        backups=BackupCatalog(blob, settings.blob_container_name_backup),
        dead_letters=DeadLetters(queue, jobs, states, DeadLetterClaims(db)),
        retry=retry
        or RetryPolicy(
            attempts=settings.retry_attempts, max_wait_seconds=settings.retry_max_wait_seconds
        ),
        request_retry=retry
        or RetryPolicy(
            attempts=None,
            max_wait_seconds=settings.retry_max_wait_seconds,
            deadline_seconds=settings.request_retry_seconds,
        ),
    )
