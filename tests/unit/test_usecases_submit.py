"""Submitting a stored upload: its job is recorded and its parts queued exactly once, or, when
the queue cannot take them, nothing of it is left behind."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.errors import QueueUnavailable
from common.model.jobs import Job, JobStatus
from common.queue import JobQueue, OutgoingMessage
from common.queue.memory import MemoryJobQueue
from common.sql.db import utcnow
from common.stores.sends import JobSends
from common.usecases.submit import EMPTY_FILE, StoredUpload, Submission, submit
from tests.unit.conftest import Embedded

DEPARTMENTS = b"".join(b"%d,Department %d\n" % (i, i) for i in range(1, 201))
FAR_FUTURE = utcnow() + timedelta(days=1)


class UnreachableQueue(MemoryJobQueue):
    """A queue whose sends fail, as Service Bus does in an outage."""

    def send(self, messages: list[OutgoingMessage]) -> None:
        raise QueueUnavailable("the queue could not be reached")


class SlowFailingQueue(MemoryJobQueue):
    """A send that fails after so long that a worker's reconciliation has already claimed the
    job and sent its messages."""

    def __init__(self, sends: JobSends) -> None:
        super().__init__()
        self.sends = sends

    def send(self, messages: list[OutgoingMessage]) -> None:
        for job_id in self.sends.unsent(FAR_FUTURE):
            self.sends.claim(job_id)
        raise QueueUnavailable("the send timed out")


def submit_to(
    embedded: Embedded,
    upload: StoredUpload,
    *,
    queue: JobQueue | None = None,
    force: bool = False,
) -> tuple[Job, bool]:
    return submit(
        embedded.jobs,
        embedded.sends,
        queue or embedded.queue,
        embedded.files,
        [upload],
        Submission(force=force),
    )[0]


def test_a_submitted_upload_is_a_queued_job_with_one_message_per_part(embedded: Embedded) -> None:
    # Given an upload stored in the blob store, cut into several parts
    upload = embedded.store_upload("departments", DEPARTMENTS, part_bytes=1000)
    assert len(upload.parts) > 1

    # When it is submitted
    job, created = submit_to(embedded, upload)

    # Then its job is new and queued, one message waits for each part, and the job is marked
    # sent, so that no reconciliation sends them again
    assert created
    assert (job.job_id, job.status, job.parts) == (
        upload.job_id,
        JobStatus.QUEUED,
        len(upload.parts),
    )
    assert embedded.queued_parts() == [(job.job_id, n) for n in range(len(upload.parts))]
    assert embedded.sends.unsent(FAR_FUTURE) == []


def test_the_same_content_again_reuses_the_job_and_drops_the_second_copy(
    embedded: Embedded,
) -> None:
    # Given an upload already submitted
    first = embedded.store_upload("departments", DEPARTMENTS)
    job, _ = submit_to(embedded, first)

    # When the same file is uploaded and submitted again
    second = embedded.store_upload("departments", DEPARTMENTS)
    again, created = submit_to(embedded, second)

    # Then the first job answers, nothing more is queued, and only the first copy is kept
    assert not created
    assert again.job_id == job.job_id
    assert embedded.queued_parts() == [(job.job_id, 0)]
    assert embedded.uploads() == [first.blob_name]


def test_forcing_the_same_content_makes_a_second_job(embedded: Embedded) -> None:
    first = embedded.store_upload("departments", DEPARTMENTS)
    second = embedded.store_upload("departments", DEPARTMENTS)
    job, _ = submit_to(embedded, first)

    forced, created = submit_to(embedded, second, force=True)

    assert created
    assert forced.job_id != job.job_id
    assert embedded.queued_parts() == [(job.job_id, 0), (forced.job_id, 0)]
    assert sorted(embedded.uploads()) == sorted([first.blob_name, second.blob_name])


def test_an_empty_file_is_a_job_that_warns_it_is_empty(embedded: Embedded) -> None:
    upload = embedded.store_upload("jobs", b"")

    job, created = submit_to(embedded, upload)

    assert created
    assert job.warnings == (EMPTY_FILE,)
    assert embedded.queued_parts() == [(job.job_id, 0)]


def test_when_the_queue_is_unreachable_the_job_and_its_file_are_removed(
    embedded: Embedded,
) -> None:
    # Given a queue that cannot be reached
    queue = UnreachableQueue()
    upload = embedded.store_upload("departments", DEPARTMENTS)

    # When the upload is submitted, the caller hears of the outage
    with pytest.raises(QueueUnavailable):
        submit_to(embedded, upload, queue=queue)

    # Then no job and no file are left for a worker to find, so the client may just retry
    assert embedded.jobs.page(limit=10, offset=0)[1] == 0
    assert embedded.uploads() == []
    retried = embedded.store_upload("departments", DEPARTMENTS)
    job, created = submit_to(embedded, retried)
    assert created
    assert embedded.queued_parts() == [(job.job_id, 0)]


def test_a_send_that_fails_after_a_worker_sent_the_job_keeps_the_job(embedded: Embedded) -> None:
    # Given a send that fails only after a worker's reconciliation claimed the job
    queue = SlowFailingQueue(embedded.sends)
    upload = embedded.store_upload("departments", DEPARTMENTS)

    # When the upload is submitted
    job, created = submit_to(embedded, upload, queue=queue)

    # Then the job and its file stay for the messages the worker sent
    assert created
    assert embedded.jobs.get(job.job_id).status is JobStatus.QUEUED
    assert embedded.uploads() == [upload.blob_name]
