"""The job queue contract: every implementation behaves like Azure Service Bus peek-lock.

Time moves on the test's clock (``clock.advance``) instead of the test waiting for it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from common.errors import LockLost, MessageNotFound
from common.queue import MAX_DEAD_LETTER_TEXT, MAX_DELIVERY_REASON, OutgoingMessage
from tests.contract.conftest import Clock, QueueFactory


def msg(body: bytes, message_id: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(body, message_id or body.decode())


def test_a_sent_message_is_received_locked_and_hidden_from_others(
    make_queue: QueueFactory, clock: Clock
) -> None:
    queue = make_queue()
    queue.send([msg(b"one")])

    first = queue.receive(5)

    assert first is not None
    assert (first.body, first.message_id, first.delivery_count) == (b"one", "one", 1)
    assert first.locked_until > clock.now()
    assert queue.receive(0.3) is None
    assert queue.active_count() == 1


def test_messages_come_out_in_the_order_they_were_sent(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(b"a"), msg(b"b")])
    queue.send([msg(b"c")])

    bodies = []
    for _ in range(3):
        received = queue.receive(5)
        assert received is not None
        bodies.append(received.body)
        queue.complete(received)

    assert bodies == [b"a", b"b", b"c"]


def test_completing_removes_the_message_for_good(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(b"done")])
    received = queue.receive(5)
    assert received is not None

    queue.complete(received)

    assert queue.receive(0.3) is None
    assert queue.active_count() == 0
    with pytest.raises(LockLost):
        queue.complete(received)


def test_abandoning_delivers_again_with_a_higher_delivery_count(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(b"again")])
    first = queue.receive(5)
    assert first is not None

    queue.abandon(first)
    second = queue.receive(5)

    assert second is not None
    assert second.body == b"again"
    assert second.delivery_count == 2
    with pytest.raises(LockLost):
        queue.complete(first)
    queue.complete(second)


def test_an_expired_lock_redelivers_and_the_old_lock_cannot_settle(
    make_queue: QueueFactory, clock: Clock
) -> None:
    queue = make_queue(lock=5.0)
    queue.send([msg(b"slow")])
    first = queue.receive(5)
    assert first is not None
    assert queue.receive(0.2) is None

    clock.advance(6.0)
    second = queue.receive(5)

    assert second is not None
    assert second.delivery_count == 2
    with pytest.raises(LockLost):
        queue.complete(first)
    queue.complete(second)
    assert queue.receive(0.3) is None


def test_renewing_the_lock_keeps_the_message_hidden(make_queue: QueueFactory, clock: Clock) -> None:
    queue = make_queue(lock=5.0)
    queue.send([msg(b"long")])
    received = queue.receive(5)
    assert received is not None

    for _ in range(3):  # 12 s in all, each renewal 4 s into a 5 s lock
        clock.advance(4.0)
        assert queue.renew_lock(received) > clock.now() + timedelta(seconds=4)
        assert queue.receive(0.1) is None

    queue.complete(received)
    assert queue.active_count() == 0


def test_dead_lettering_keeps_reason_and_description(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(b"poison")])
    received = queue.receive(5)
    assert received is not None

    queue.dead_letter(received, "MalformedMessage", "body is not JSON")

    assert queue.receive(0.3) is None
    letters, total = queue.list_dead_letters(limit=10, offset=0)
    assert total == 1
    [letter] = letters
    assert (letter.body, letter.reason, letter.description) == (
        b"poison",
        "MalformedMessage",
        "body is not JSON",
    )
    assert letter.message_id == "poison"
    assert letter.delivery_count == 1
    assert queue.get_dead_letter(letter.id).reason == "MalformedMessage"


def test_reaching_the_max_delivery_count_dead_letters(make_queue: QueueFactory) -> None:
    queue = make_queue(max_deliveries=2)
    queue.send([msg(b"flaky")])
    for attempt in (1, 2):
        received = queue.receive(5)
        assert received is not None
        assert received.delivery_count == attempt
        queue.abandon(received)

    assert queue.receive(0.5) is None
    letters, total = queue.list_dead_letters(limit=10, offset=0)
    assert total == 1
    assert letters[0].reason == MAX_DELIVERY_REASON
    assert letters[0].body == b"flaky"


def test_a_scheduled_message_stays_invisible_until_its_time(
    make_queue: QueueFactory, clock: Clock
) -> None:
    queue = make_queue()
    queue.send([OutgoingMessage(b"later", "later", clock.now() + timedelta(seconds=10))])

    assert queue.receive(0.5) is None
    assert queue.active_count() == 1  # scheduled messages count as in the queue
    clock.advance(11.0)
    received = queue.receive(5)

    assert received is not None
    assert received.body == b"later"


def test_a_resubmitted_dead_letter_is_delivered_afresh(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(b"retry-me")])
    received = queue.receive(5)
    assert received is not None
    queue.dead_letter(received, "Broken", "fixed since")
    [letter], _ = queue.list_dead_letters(10, 0)

    queue.resubmit_dead_letter(letter.id)

    again = queue.receive(5)
    assert again is not None
    assert again.body == b"retry-me"
    assert again.delivery_count == 1
    assert queue.list_dead_letters(10, 0) == ([], 0)
    queue.complete(again)


def test_purging_a_dead_letter_removes_it(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(b"gone")])
    received = queue.receive(5)
    assert received is not None
    queue.dead_letter(received, "Broken", "never mind")
    [letter], _ = queue.list_dead_letters(10, 0)

    purged = queue.purge_dead_letter(letter.id)

    assert purged.body == b"gone"
    assert queue.list_dead_letters(10, 0) == ([], 0)
    with pytest.raises(MessageNotFound):
        queue.get_dead_letter(letter.id)
    with pytest.raises(MessageNotFound):
        queue.resubmit_dead_letter(letter.id)


def test_dead_letters_page_with_a_total(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(f"m{i}".encode()) for i in range(5)])
    for _ in range(5):
        received = queue.receive(5)
        assert received is not None
        queue.dead_letter(received, "Broken", received.body.decode())

    page, total = queue.list_dead_letters(limit=2, offset=2)

    assert total == 5
    assert [letter.body for letter in page] == [b"m2", b"m3"]


def test_concurrent_receivers_never_share_a_message(make_queue: QueueFactory) -> None:
    queue = make_queue()
    count = 40
    queue.send([msg(f"m{i}".encode()) for i in range(count)])
    seen: list[bytes] = []
    lock = threading.Lock()

    def drain() -> None:
        while True:
            received = queue.receive(0.5)
            if received is None:
                return
            with lock:
                seen.append(received.body)
            queue.complete(received)

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(seen) == sorted(f"m{i}".encode() for i in range(count))


def test_peeking_sees_waiting_scheduled_and_locked_messages_but_not_dead_letters(
    make_queue: QueueFactory, clock: Clock
) -> None:
    queue = make_queue()
    queue.send([msg(b"dead"), msg(b"locked")])
    dead = queue.receive(5)
    assert dead is not None and dead.body == b"dead"
    queue.dead_letter(dead, "Broken", "for the test")
    locked = queue.receive(5)
    assert locked is not None and locked.body == b"locked"
    queue.send([msg(b"waiting")])
    queue.send([OutgoingMessage(b"scheduled", "scheduled", clock.now() + timedelta(minutes=5))])

    peeked = queue.peek_active()

    assert sorted(peeked) == [b"locked", b"scheduled", b"waiting"]
    waiting = queue.receive(5)  # peeking locked nothing and counted no delivery
    assert waiting is not None
    assert (waiting.body, waiting.delivery_count) == (b"waiting", 1)


def test_peeking_and_counting_see_every_message_however_many(make_queue: QueueFactory) -> None:
    queue = make_queue()
    bodies = [f"m{i}".encode() for i in range(7)]  # more than one short page of a peek
    queue.send([msg(b) for b in bodies])

    assert sorted(queue.peek_active()) == sorted(bodies)
    assert queue.active_count() == 7


def test_a_page_of_dead_letters_and_the_total_beyond_one_peek(make_queue: QueueFactory) -> None:
    queue = make_queue()
    queue.send([msg(f"d{i}".encode()) for i in range(8)])
    for _ in range(8):
        received = queue.receive(5)
        assert received is not None
        queue.dead_letter(received, "Broken", received.body.decode())

    first, total = queue.list_dead_letters(limit=3, offset=0)
    last, _ = queue.list_dead_letters(limit=3, offset=6)

    assert total == 8
    assert [x.body for x in first] == [b"d0", b"d1", b"d2"]
    assert [x.body for x in last] == [b"d6", b"d7"]
    assert queue.list_dead_letters(limit=3, offset=8) == ([], 8)


def test_a_long_dead_letter_description_is_cut_to_what_service_bus_takes(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.send([msg(b"verbose")])
    received = queue.receive(5)
    assert received is not None
    description = "line 1: " + "é" * 3000 + "🚀" * 3000  # 9,008 UTF-16 code units

    queue.dead_letter(received, "Broken", description)

    [letter], _ = queue.list_dead_letters(10, 0)
    assert len(letter.description.encode("utf-16-le")) // 2 <= MAX_DEAD_LETTER_TEXT
    assert letter.description.startswith("line 1: " + "é" * 3000 + "🚀")
    assert letter.description.endswith("…")


def test_a_lock_that_expires_on_the_last_allowed_delivery_dead_letters_the_message(
    make_queue: QueueFactory, clock: Clock
) -> None:
    queue = make_queue(lock=5.0, max_deliveries=1)
    queue.send([msg(b"stuck")])
    received = queue.receive(5)
    assert received is not None

    clock.advance(6.0)

    assert queue.receive(0.3) is None
    letters, total = queue.list_dead_letters(limit=10, offset=0)
    assert total == 1
    assert (letters[0].body, letters[0].reason, letters[0].delivery_count) == (
        b"stuck",
        MAX_DELIVERY_REASON,
        1,
    )
    with pytest.raises(LockLost):
        queue.renew_lock(received)
    with pytest.raises(LockLost):
        queue.dead_letter(received, "TooLate", "the lock is gone")


def test_a_resubmitted_dead_letter_is_a_new_message_and_the_dead_letter_is_gone(
    make_queue: QueueFactory,
) -> None:
    queue = make_queue()
    queue.send([msg(b"copy-me")])
    first = queue.receive(5)
    assert first is not None
    queue.dead_letter(first, "Broken", "fixed since")
    [letter], _ = queue.list_dead_letters(10, 0)

    resubmitted = queue.resubmit_dead_letter(letter.id)

    assert resubmitted.body == b"copy-me"
    again = queue.receive(5)
    assert again is not None
    assert again.sequence_number > first.sequence_number
    with pytest.raises(MessageNotFound):
        queue.resubmit_dead_letter(letter.id)
    with pytest.raises(MessageNotFound):
        queue.purge_dead_letter(letter.id)
    queue.complete(again)
    assert queue.active_count() == 0
