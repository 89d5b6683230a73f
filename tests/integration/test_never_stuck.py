"""No job is ever stranded: operator actions that race, cancellations, lost messages and killed
workers all leave every unfinished job with a message in flight or a live lease (repaired by
the reconciliation where nothing else can), and every job ends with its counters equal to the
rows it left."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from common.bootstrap import Services
from common.model.jobs import JobStatus
from common.sql.catalog_tables import data_table
from common.sql.db import utcnow
from common.sql.schema import job_parts as parts_t
from common.sql.schema import queue_messages as qm
from tests.support.faults import HookedParts
from tests.support.flow import api_client, drain, service_set, upload
from tests.support.reconciling import reconciler, stranded_parts
from tests.support.serving import at_once, http, serving
from worker.main import build_consumer

BINARY = bytes(range(256)) * 8  # fails for good: not text


class Killed(BaseException):
    """The worker process dies here: nothing after this point of its code runs."""


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    with service_set(tmp_path, database_url, block_bytes=2048) as built:
        built.parts = HookedParts(built.parts)
        yield built


def dead_letter_of(services: Services, job_id: str) -> str:
    letters, _ = services.queue.list_dead_letters(1000, 0)
    [letter_id] = [x.id for x in letters if job_id.encode() in x.body]
    return letter_id


def a_failed_binary_upload(services: Services, salt: int) -> str:
    with api_client(services) as client:
        job_id: str = upload(client, "jobs", BINARY + bytes([salt % 256]))["job_id"]
    drain(services)
    assert services.jobs.get(job_id).status is JobStatus.FAILED
    return job_id


def departments(first_id: int, rows: int) -> bytes:
    return "".join(f"{i},Department {i}\n" for i in range(first_id, first_id + rows)).encode()


def ids_in(services: Services, low: int, high: int) -> list[int]:
    t = data_table("departments")
    with services.db.read() as conn:
        return list(conn.execute(select(t.c.id).where(t.c.id.between(low, high))).scalars())


# --- resubmit and purge of one dead letter --------------------------------------------------


def test_resubmit_and_purge_at_the_same_instant_one_wins_and_the_job_is_never_stranded(
    services: Services,
) -> None:
    with serving(services) as url, http(url) as client:
        for round_no in range(4):
            # Given a failed upload and its dead letter
            job_id = a_failed_binary_upload(services, round_no)
            letter = dead_letter_of(services, job_id)

            # When an operator resubmits it while another purges it, at the same instant
            path = f"/dead-letters/{letter}"
            resubmitted, purged = at_once(
                [
                    lambda p=path: client.post(f"{p}/resubmit"),  # type: ignore[misc]
                    lambda p=path: client.delete(p),  # type: ignore[misc]
                ]
            )

            # Then exactly one of them wins and the other is told it lost, with a reason
            statuses = sorted([resubmitted.status_code, purged.status_code])
            assert statuses in ([202, 409], [204, 409]), (resubmitted.text, purged.text)
            loser = resubmitted if resubmitted.status_code == 409 else purged
            assert loser.json()["detail"].startswith(f"dead letter {letter} ")
            # And the job is consistent with the winner: queued with its message again, or
            # failed with nothing left in the queue
            job = services.jobs.get(job_id)
            if resubmitted.status_code == 202:
                assert job.status is JobStatus.QUEUED
            else:
                assert job.status is JobStatus.FAILED
                assert (job.error or "").startswith("NotText")
            assert stranded_parts(services) == []
            drain(services)  # a resubmitted binary upload fails again, dead-lettered anew
            assert services.jobs.get(job_id).status is JobStatus.FAILED


def test_a_repeated_purge_is_a_404_and_a_resubmit_after_a_purge_a_409(services: Services) -> None:
    job_id = a_failed_binary_upload(services, 1)
    letter = dead_letter_of(services, job_id)
    with api_client(services) as client:
        assert client.delete(f"/dead-letters/{letter}").status_code == 204
        again = client.delete(f"/dead-letters/{letter}")
        late = client.post(f"/dead-letters/{letter}/resubmit")

    assert again.status_code == 404
    assert "already purged" in again.json()["detail"]
    assert late.status_code == 409
    assert "already purged" in late.json()["detail"]
    assert services.jobs.get(job_id).status is JobStatus.FAILED


# --- cancel ---------------------------------------------------------------------------------


def test_a_queued_job_is_cancelled_at_once_and_its_message_completed_on_arrival(
    services: Services,
) -> None:
    with api_client(services) as client:
        job_id = upload(client, "departments", departments(1, 50))["job_id"]
        answer = client.post(f"/jobs/{job_id}/cancel")

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    assert drain(services) == 1
    assert services.queue.peek_active() == []
    assert ids_in(services, 1, 50) == []
    assert services.jobs.get(job_id).status is JobStatus.CANCELLED


def test_a_running_job_stops_at_its_next_block_and_keeps_what_it_committed(
    services: Services,
) -> None:
    # Given a job of many blocks whose second block has just been committed
    with api_client(services) as client:
        job_id = upload(client, "departments", departments(1, 2000))["job_id"]
    hooked = services.parts
    assert isinstance(hooked, HookedParts)

    def cancel_after_second_block(n: int) -> None:
        if n == 2:
            threading.Thread(target=services.states.cancel, args=(job_id, "test")).start()

    hooked.after_advance = cancel_after_second_block

    # When it is cancelled while the worker goes on
    drain(services)

    # Then the worker stopped at a block boundary: the rows it committed stay and are counted
    job = services.jobs.get(job_id)
    assert job.status is JobStatus.CANCELLED
    kept = ids_in(services, 1, 2000)
    assert 0 < len(kept) < 2000
    assert job.rows_inserted == len(kept)
    assert kept == list(range(1, len(kept) + 1))
    assert services.queue.peek_active() == []


def test_uploads_waiting_on_a_cancelled_job_stop_waiting(services: Services) -> None:
    with api_client(services) as client:
        parent = upload(client, "departments", departments(1, 5))["job_id"]
        child = upload(client, "hired_employees", b"1,Ann,2021-01-01T00:00:00Z,1,1\n")["job_id"]
        assert client.get(f"/jobs/{child}").json()["waiting_for"] == [parent]

        assert client.post(f"/jobs/{parent}/cancel").status_code == 200

        assert client.get(f"/jobs/{child}").json()["waiting_for"] == []
    drain(services)
    finished = services.jobs.get(child)
    assert finished.status is JobStatus.SUCCEEDED
    assert finished.rows_rejected == 1  # department 1 and job 1 never arrived


def test_a_finished_job_cannot_be_cancelled(services: Services) -> None:
    with api_client(services) as client:
        job_id = upload(client, "departments", departments(1, 5))["job_id"]
        drain(services)
        answer = client.post(f"/jobs/{job_id}/cancel")
        again = upload(client, "departments", departments(1, 5))

    assert answer.status_code == 409
    assert "already succeeded" in answer.json()["detail"]
    assert again["job_id"] == job_id  # still the job that holds this content


def test_a_cancelled_upload_can_be_sent_again_as_a_new_job(services: Services) -> None:
    with api_client(services) as client:
        first = upload(client, "departments", departments(1, 5))["job_id"]
        client.post(f"/jobs/{first}/cancel")
        second = upload(client, "departments", departments(1, 5))["job_id"]
    assert second != first
    drain(services)
    assert services.jobs.get(second).rows_inserted == 5


# --- the reconciliation ---------------------------------------------------------------------


def test_a_lost_message_is_sent_again_and_a_dead_lettered_one_fails_its_job(
    services: Services,
) -> None:
    with api_client(services) as client:
        lost = upload(client, "departments", departments(1, 20))["job_id"]
    # Given a job whose message vanished from the queue
    with services.db.write() as conn:
        conn.execute(delete(qm))
    assert stranded_parts(services) == [(lost, 0)]

    # While its job was touched recently, the reconciliation leaves it be
    assert reconciler(services, quiet_seconds=60).run().resent == []
    # Once it has been quiet long enough, it sends the part again, and only once
    assert reconciler(services, quiet_seconds=0).run().resent == [(lost, 0)]
    assert reconciler(services, quiet_seconds=0).run().resent == []
    assert stranded_parts(services) == []
    drain(services)
    assert services.jobs.get(lost).rows_inserted == 20


# --- randomised interleavings ---------------------------------------------------------------


@dataclass
class World:
    """Jobs of known content: each departments job owns an id range of its own."""

    services: Services
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    binaries: list[str] = field(default_factory=list)


def expire_locks_and_leases(services: Services) -> None:
    """As if a lock's and a lease's time had run out: a killed worker's message comes back."""
    past = utcnow().replace(year=2000)
    with services.db.write() as conn:
        conn.execute(
            update(qm)
            .where(qm.c.locked_until.is_not(None))
            .values(locked_until=past, visible_at=past)
        )
        conn.execute(update(parts_t).values(lease_until=past))


def step(world: World, rng: random.Random, client: object, kills: list[int]) -> str:
    services = world.services
    hooked = services.parts
    assert isinstance(hooked, HookedParts)
    letters, _ = services.queue.list_dead_letters(1000, 0)
    jobs = list(world.ranges) + world.binaries
    action = rng.choice(["work", "work", "kill", "race", "cancel", "lose", "resubmit", "purge"])
    if action == "work":
        build_consumer(services, threading.Event()).run_once()
    elif action == "kill":
        at = hooked.calls + rng.randint(1, 3)

        def die(n: int) -> None:
            if n == at:
                kills.append(n)
                raise Killed

        hooked.before_advance = die
        try:
            build_consumer(services, threading.Event()).run_once()
        except Killed:
            expire_locks_and_leases(services)
        hooked.before_advance = None
    elif action == "race" and letters:
        letter = rng.choice(letters).id
        job_id = rng.choice(jobs)
        at_once(
            [
                lambda: client.post(f"/dead-letters/{letter}/resubmit"),  # type: ignore[attr-defined]
                lambda: client.delete(f"/dead-letters/{letter}"),  # type: ignore[attr-defined]
                lambda: client.post(f"/jobs/{job_id}/cancel"),  # type: ignore[attr-defined]
            ]
        )
    elif action == "cancel":
        client.post(f"/jobs/{rng.choice(jobs)}/cancel")  # type: ignore[attr-defined]
    elif action == "lose":
        with services.db.write() as conn:
            seqs = list(
                conn.execute(select(qm.c.seq).where(qm.c.dead_lettered.is_(False))).scalars()
            )
            if seqs:
                conn.execute(delete(qm).where(qm.c.seq == rng.choice(seqs)))
    elif action == "resubmit" and letters:
        client.post(f"/dead-letters/{rng.choice(letters).id}/resubmit")  # type: ignore[attr-defined]
    elif action == "purge" and letters:
        client.delete(f"/dead-letters/{rng.choice(letters).id}")  # type: ignore[attr-defined]
    return action


@pytest.mark.parametrize(
    "seed", [int(os.environ.get("INGEST_TEST_SEED", "0")) + i for i in range(3)]
)
def test_random_interleavings_of_operators_kills_and_lost_messages_strand_no_job(
    services: Services, seed: int
) -> None:
    rng = random.Random(seed)
    world = World(services)
    with serving(services) as url, http(url) as client:
        for n in range(4):
            first = 1 + n * 1000
            answer = client.post(
                "/uploads/departments",
                content=departments(first, 300),
                headers={"content-type": "text/csv"},
            )
            world.ranges[answer.json()["job_id"]] = (first, first + 299)
        for salt in range(2):
            answer = client.post(
                "/uploads/jobs",
                content=BINARY + bytes([salt]),
                headers={"content-type": "text/csv"},
            )
            world.binaries.append(answer.json()["job_id"])

        kills: list[int] = []
        for _ in range(30):
            action = step(world, rng, client, kills)
            # Whatever happened, one reconciliation pass leaves no job stranded
            reconciler(services, quiet_seconds=0).run()
            assert stranded_parts(services) == [], (seed, action)

        # Finally, with the faults gone, every job ends and its counters equal its rows
        for _ in range(50):
            drain(services)
            reconciler(services, quiet_seconds=0).run()
            if all(services.jobs.get(j).status.terminal for j in [*world.ranges, *world.binaries]):
                break
        else:
            pytest.fail(f"jobs still unfinished (seed {seed})")

    for job_id, (low, high) in world.ranges.items():
        job = services.jobs.get(job_id)
        kept = ids_in(services, low, high)
        assert job.rows_inserted == len(kept), (seed, job)
        assert kept == list(range(low, low + len(kept))), seed
        if job.status is JobStatus.SUCCEEDED:
            assert len(kept) == 300
    for job_id in world.binaries:
        assert services.jobs.get(job_id).status in (JobStatus.FAILED, JobStatus.CANCELLED)
