"""The reconciliation repairs what would strand a job: a job never sent, a part whose message
was lost, a part whose message was dead-lettered, a staged job left unpublished; and it leaves
alone what is in flight."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from common.model.jobs import JobStatus
from common.model.messages import JobMessage
from common.model.options import LoadOptions
from common.model.outcomes import Outcome
from common.stores.parts import PartLeases
from common.usecases.ingest_part import IngestSettings, PartIngestor
from common.usecases.publish import Outcome as Published
from common.usecases.reconcile import Reconciler, ReconcileTiming
from common.usecases.submit import StoredUpload, Submission, submit
from tests.conftest import NO_WAIT_RETRY
from tests.unit.conftest import Embedded

DEPARTMENTS = b"".join(b"%d,Department %d\n" % (i, i) for i in range(1, 201))
AT_ONCE = ReconcileTiming(every_seconds=60.0, unsent_after_seconds=0.0, quiet_seconds=0.0)


def reconciler(embedded: Embedded, owner: str = "worker-a") -> Reconciler:
    e = embedded
    return Reconciler(e.db, e.jobs, e.sends, e.states, e.queue, owner, AT_ONCE)


def recorded(embedded: Embedded, upload: StoredUpload) -> str:
    """The upload's job recorded but its messages never sent: the API died in between."""
    job, _ = embedded.jobs.create(
        job_id=upload.job_id,
        table=upload.table,
        content_sha256=upload.sha256,
        size_bytes=upload.size,
        original_name=upload.original_name,
        blob_name=upload.blob_name,
        on_conflict="reject",
        parts=upload.parts,
    )
    return job.job_id


def submitted(embedded: Embedded, upload: StoredUpload, how: Submission | None = None) -> str:
    e = embedded
    [(job, _)] = submit(e.jobs, e.sends, e.queue, e.files, [upload], how or Submission())
    return job.job_id


def ingestor(embedded: Embedded, owner: str) -> PartIngestor:
    e = embedded
    settings = IngestSettings(
        block_bytes=1 << 20, read_bytes=1 << 20, dependency_wait_seconds=0, lease_seconds=30
    )
    return PartIngestor(
        e.db,
        e.jobs,
        PartLeases(e.db),
        e.states,
        e.files,
        NO_WAIT_RETRY,
        settings,
        owner,
        threading.Event(),
    )


def deliver(embedded: Embedded, worker: PartIngestor) -> Outcome:
    """Receive the next message, hand it to ``worker`` and complete it."""
    message = embedded.queue.receive(0)
    assert message is not None
    outcome = worker.handle(JobMessage.decode(message.body), 1, threading.Event())
    embedded.queue.complete(message)
    return outcome


class Crashed(Exception):
    """The worker died here."""


def stage_then_crash(embedded: Embedded) -> JobMessage:
    """A worker takes the next message, stages its part and dies before publishing; the
    message it held, still locked."""
    dying = ingestor(embedded, "worker-a")

    def crash(_job: object) -> Published:
        raise Crashed

    dying.publisher.publish = crash  # type: ignore[method-assign]
    message = embedded.queue.receive(0)
    assert message is not None
    with pytest.raises(Crashed):
        dying.handle(JobMessage.decode(message.body), 1, threading.Event())
    return message


def test_a_job_whose_upload_never_sent_it_is_sent_once(embedded: Embedded) -> None:
    # Given a job recorded by an API that died before sending its three parts' messages
    upload = embedded.store_upload("departments", DEPARTMENTS, part_bytes=1200)
    job_id = recorded(embedded, upload)
    assert embedded.queued_parts() == []

    # When the reconciliation runs, twice
    first = reconciler(embedded).run()
    second = reconciler(embedded).run()

    # Then the first pass sent one message per part and the second found nothing to do
    assert first.sent == [job_id]
    assert second.sent == [] and second.resent == []
    assert embedded.queued_parts() == [(job_id, n) for n in range(len(upload.parts))]


def test_a_part_whose_message_was_lost_is_queued_again(embedded: Embedded) -> None:
    # Given a sent job whose message is lost (received, then completed without any work)
    job_id = submitted(embedded, embedded.store_upload("departments", DEPARTMENTS))
    lost = embedded.queue.receive(0)
    assert lost is not None
    embedded.queue.complete(lost)

    # When the reconciliation runs
    repairs = reconciler(embedded).run()

    # Then a fresh message is sent for the part, and the job is still queued
    assert repairs.resent == [(job_id, 0)]
    assert embedded.queued_parts() == [(job_id, 0)]
    assert embedded.jobs.get(job_id).status is JobStatus.QUEUED


def test_parts_with_a_message_waiting_scheduled_or_locked_are_left_alone(
    embedded: Embedded,
) -> None:
    # Given three sent jobs: one message waiting, one locked by a worker, one rescheduled
    waiting = submitted(embedded, embedded.store_upload("departments", b"1,Sales\n"))
    locked = submitted(embedded, embedded.store_upload("departments", b"2,Support\n"))
    later = submitted(embedded, embedded.store_upload("departments", b"3,Legal\n"))
    received = [embedded.queue.receive(0) for _ in range(3)]
    for message in received:
        assert message is not None
        job = JobMessage.decode(message.body)
        if job.job_id == later:
            at = message.enqueued_at + timedelta(minutes=5)
            embedded.queue.send([job.later_send(at, "wait")])
            embedded.queue.complete(message)
        elif job.job_id == waiting:
            embedded.queue.abandon(message)

    # When the reconciliation runs
    repairs = reconciler(embedded).run()

    # Then it sends nothing and fails nothing
    assert (repairs.sent, repairs.resent, repairs.failed) == ([], [], [])
    assert sorted(embedded.queued_parts()) == sorted([(waiting, 0), (locked, 0), (later, 0)])


def test_a_part_whose_message_was_dead_lettered_fails_its_job_with_the_reason(
    embedded: Embedded,
) -> None:
    # Given a sent job whose message the broker dead-lettered on its own
    job_id = submitted(embedded, embedded.store_upload("departments", DEPARTMENTS))
    message = embedded.queue.receive(0)
    assert message is not None
    embedded.queue.dead_letter(message, "MaxDeliveryCountExceeded", "delivered 10 times")

    # When the reconciliation runs
    repairs = reconciler(embedded).run()

    # Then the job ends failed with the dead letter's reason, and nothing is sent for it
    assert repairs.failed == [job_id]
    job = embedded.jobs.get(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "MaxDeliveryCountExceeded: delivered 10 times"
    assert embedded.queued_parts() == []


def test_one_worker_at_a_time_reconciles(embedded: Embedded) -> None:
    # Given a job never sent, and worker A holding the reconcile lease after a pass
    reconciler(embedded, "worker-a").run()
    job_id = recorded(embedded, embedded.store_upload("departments", DEPARTMENTS))

    # When worker B runs a pass meanwhile, it does nothing; A's next pass does the repair
    assert reconciler(embedded, "worker-b").run().sent == []
    assert reconciler(embedded, "worker-a").run().sent == [job_id]
    assert embedded.queued_parts() == [(job_id, 0)]


def test_a_staged_job_left_unpublished_is_published_through_a_fresh_message(
    embedded: Embedded,
) -> None:
    # Given an atomic upload whose only part was staged by a worker that died before
    # publishing, and whose message was lost with it
    atomic = Submission(options=LoadOptions(atomic=True))
    job_id = submitted(embedded, embedded.store_upload("departments", DEPARTMENTS), atomic)
    embedded.queue.complete(stage_then_crash(embedded))
    staged = embedded.jobs.get(job_id)
    assert (staged.status, staged.parts_done, staged.rows_staged) == (JobStatus.RUNNING, 1, 200)
    assert embedded.queued_parts() == []

    # When the reconciliation runs, twice
    first = reconciler(embedded).run()
    second = reconciler(embedded).run()

    # Then the first pass queued one message for the job and the second left it in flight
    assert first.published == [job_id]
    assert second.published == []
    assert embedded.queued_parts() == [(job_id, 0)]
    # And the worker that takes it publishes every staged row
    deliver(embedded, ingestor(embedded, "worker-b"))
    published = embedded.jobs.get(job_id)
    assert (published.status, published.rows_inserted) == (JobStatus.SUCCEEDED, 200)


def test_a_staged_job_with_a_message_in_flight_or_a_part_to_stage_is_left_alone(
    embedded: Embedded,
) -> None:
    # Given two staged jobs: one staged by a worker that died, its message still locked, and
    # one with a part still to stage, its message waiting
    atomic = Submission(options=LoadOptions(atomic=True))
    staged = submitted(embedded, embedded.store_upload("departments", b"1,Sales\n"), atomic)
    stage_then_crash(embedded)
    dry_run = Submission(options=LoadOptions(dry_run=True))
    staging = submitted(embedded, embedded.store_upload("departments", b"2,HR\n"), dry_run)

    # When the reconciliation runs
    repairs = reconciler(embedded).run()

    # Then it sends nothing for either
    assert (repairs.sent, repairs.resent, repairs.published) == ([], [], [])
    assert sorted(embedded.queued_parts()) == sorted([(staging, 0), (staged, 0)])


def test_a_staged_job_waiting_for_the_other_file_of_its_upload_is_left_alone(
    embedded: Embedded,
) -> None:
    # Given an atomic upload of two files: departments staged (it waits for the other file to
    # publish together, with no message of its own), jobs still to stage
    e = embedded
    uploads = [e.store_upload("departments", b"1,Sales\n"), e.store_upload("jobs", b"1,Clerk\n")]
    atomic = Submission(options=LoadOptions(atomic=True))
    submit(e.jobs, e.sends, e.queue, e.files, uploads, atomic)
    outcome = deliver(embedded, ingestor(embedded, "worker-a"))
    assert "still staging" in outcome.note
    assert embedded.queued_parts() == [(uploads[1].job_id, 0)]

    # When the reconciliation runs
    repairs = reconciler(embedded).run()

    # Then it sends nothing: the other file's worker publishes both
    assert (repairs.sent, repairs.resent, repairs.published) == ([], [], [])
    assert embedded.queued_parts() == [(uploads[1].job_id, 0)]
