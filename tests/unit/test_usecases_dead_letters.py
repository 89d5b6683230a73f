"""An operator's actions on dead letters: a resubmit puts the failed job back in the queue
whole, a purge ends it failed for good, and each dead letter takes one action only."""

from __future__ import annotations

import pytest

from common.errors import DeadLetterTaken, MessageNotFound
from common.model.jobs import JobStatus
from common.queue import DeadLetter, OutgoingMessage
from common.usecases.dead_letters import DeadLetters
from common.usecases.submit import Submission, submit
from tests.unit.conftest import Embedded

DEPARTMENTS = b"".join(b"%d,Department %d\n" % (i, i) for i in range(1, 201))


def operator(embedded: Embedded) -> DeadLetters:
    return DeadLetters(embedded.queue, embedded.jobs, embedded.states, embedded.claims)


def a_failed_job(embedded: Embedded, *, part_bytes: int = 1 << 20) -> tuple[str, DeadLetter]:
    """A submitted job whose first part's message a worker dead-lettered, failing the job as
    the consumer does; the other parts' messages are gone with the failed job."""
    e = embedded
    upload = e.store_upload("departments", DEPARTMENTS, part_bytes=part_bytes)
    [(job, _)] = submit(e.jobs, e.sends, e.queue, e.files, [upload], Submission())
    first = e.queue.receive(0)
    assert first is not None
    e.queue.dead_letter(first, "NotText", "byte 7 is not UTF-8")
    e.states.fail(job.job_id, "NotText: byte 7 is not UTF-8")
    while (other := e.queue.receive(0)) is not None:
        e.queue.complete(other)
    [letter], _ = e.queue.list_dead_letters(10, 0)
    return job.job_id, letter


def test_resubmitting_puts_the_job_back_in_the_queue_with_every_unfinished_part(
    embedded: Embedded,
) -> None:
    # Given a failed job of three parts, its first part's message dead-lettered
    job_id, letter = a_failed_job(embedded, part_bytes=1200)
    parts = len(embedded.jobs.parts(job_id))
    assert parts == 3

    # When an operator resubmits the dead letter
    resubmitted = operator(embedded).resubmit(letter.id)

    # Then the job is queued again, without its error, and every part has a message again
    assert resubmitted.id == letter.id
    job = embedded.jobs.get(job_id)
    assert (job.status, job.error) == (JobStatus.QUEUED, None)
    assert sorted(embedded.queued_parts()) == [(job_id, n) for n in range(parts)]
    assert embedded.queue.list_dead_letters(10, 0) == ([], 0)
    # And the replayed message starts its deliveries afresh
    replayed = embedded.queue.receive(0)
    assert replayed is not None
    assert (replayed.body, replayed.delivery_count) == (letter.body, 1)


def test_a_replayed_message_dead_lettered_again_can_be_resubmitted_again(
    embedded: Embedded,
) -> None:
    # Given a dead letter resubmitted once, whose message failed again
    job_id, letter = a_failed_job(embedded)
    operator(embedded).resubmit(letter.id)
    replayed = embedded.queue.receive(0)
    assert replayed is not None
    embedded.queue.dead_letter(replayed, "NotText", "byte 7 is not UTF-8")
    embedded.states.fail(job_id, "NotText: byte 7 is not UTF-8")
    [again], _ = embedded.queue.list_dead_letters(10, 0)

    # When the operator resubmits the new dead letter
    operator(embedded).resubmit(again.id)

    # Then it is a different dead letter from the first, and the job is queued once more
    assert again.id != letter.id
    assert embedded.jobs.get(job_id).status is JobStatus.QUEUED
    assert embedded.queued_parts() == [(job_id, 0)]


def test_purging_removes_the_dead_letter_and_the_failed_job_keeps_its_error(
    embedded: Embedded,
) -> None:
    job_id, letter = a_failed_job(embedded)

    purged = operator(embedded).purge(letter.id)

    assert purged.id == letter.id
    job = embedded.jobs.get(job_id)
    assert (job.status, job.error) == (JobStatus.FAILED, "NotText: byte 7 is not UTF-8")
    assert embedded.queue.list_dead_letters(10, 0) == ([], 0)
    assert embedded.queued_parts() == []


def test_purging_a_dead_letter_its_job_still_waits_on_ends_the_job_failed(
    embedded: Embedded,
) -> None:
    # Given a queued job whose message the broker dead-lettered on its own
    e = embedded
    upload = e.store_upload("departments", DEPARTMENTS)
    [(job, _)] = submit(e.jobs, e.sends, e.queue, e.files, [upload], Submission())
    message = e.queue.receive(0)
    assert message is not None
    e.queue.dead_letter(message, "MaxDeliveryCountExceeded", "delivered 3 times")
    [letter], _ = e.queue.list_dead_letters(10, 0)

    # When an operator purges the dead letter
    operator(embedded).purge(letter.id)

    # Then the job does not wait for ever: it ends failed, saying why
    ended = e.jobs.get(job.job_id)
    assert ended.status is JobStatus.FAILED
    assert ended.error == "MaxDeliveryCountExceeded: delivered 3 times (dead letter purged)"


def test_a_purged_dead_letter_cannot_be_purged_again_nor_resubmitted(embedded: Embedded) -> None:
    job_id, letter = a_failed_job(embedded)
    operator(embedded).purge(letter.id)

    with pytest.raises(MessageNotFound, match="already purged"):
        operator(embedded).purge(letter.id)
    with pytest.raises(DeadLetterTaken, match="already purged"):
        operator(embedded).resubmit(letter.id)

    assert embedded.jobs.get(job_id).status is JobStatus.FAILED
    assert embedded.queued_parts() == []


def test_a_dead_letter_that_is_no_job_message_is_replayed_as_it_is(embedded: Embedded) -> None:
    # Given a dead letter whose body is not a job message
    embedded.queue.send([OutgoingMessage(b"not json", "stray")])
    stray = embedded.queue.receive(0)
    assert stray is not None
    embedded.queue.dead_letter(stray, "MalformedMessage", "message body is not JSON")
    [letter], _ = embedded.queue.list_dead_letters(10, 0)

    # When an operator resubmits it, it goes back to the queue and no job is touched
    operator(embedded).resubmit(letter.id)

    assert embedded.queue.peek_active() == [b"not json"]
    assert embedded.jobs.page(limit=10, offset=0) == ([], 0)
