"""The reconciliation repairs what would strand a job: a job never sent, a part whose message
was lost, a part whose message was dead-lettered; and it leaves alone what is in flight."""

from __future__ import annotations

from datetime import timedelta

from common.model.jobs import JobStatus
from common.model.messages import JobMessage
from common.usecases.reconcile import Reconciler, ReconcileTiming
from common.usecases.submit import StoredUpload, Submission, submit
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


def submitted(embedded: Embedded, upload: StoredUpload) -> str:
    e = embedded
    [(job, _)] = submit(e.jobs, e.sends, e.queue, e.files, [upload], Submission())
    return job.job_id


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
