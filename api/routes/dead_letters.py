"""Dead letters: inspect, replay and purge messages the workers gave up on."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import PagingDep, ServicesDep
from api.problems import PROBLEM_RESPONSE
from api.schemas import DeadLetterOut, Page
from api.security import AdminAccess
from common.bootstrap import Services
from common.errors import MalformedMessage
from common.messages import JobMessage
from common.queue import DeadLetter

router = APIRouter(tags=["dead letters"], dependencies=[AdminAccess])


def _job_of(letter: DeadLetter) -> JobMessage | None:
    try:
        return JobMessage.decode(letter.body)
    except MalformedMessage:
        return None


def _out(letter: DeadLetter) -> DeadLetterOut:
    job = _job_of(letter)
    return DeadLetterOut(
        id=letter.id,
        job_id=job.job_id if job else None,
        part=job.part if job else None,
        message_id=letter.message_id,
        reason=letter.reason,
        description=letter.description,
        delivery_count=letter.delivery_count,
        enqueued_at=letter.enqueued_at,
        dead_lettered_at=letter.dead_lettered_at,
    )


@router.get("/dead-letters", response_model=Page[DeadLetterOut])
def list_dead_letters(services: ServicesDep, paging: PagingDep) -> Page[DeadLetterOut]:
    letters, total = services.queue.list_dead_letters(paging.limit, paging.offset)
    return Page(
        items=[_out(x) for x in letters], total=total, limit=paging.limit, offset=paging.offset
    )


@router.get(
    "/dead-letters/{dead_letter_id}",
    response_model=DeadLetterOut,
    responses={404: PROBLEM_RESPONSE},
)
def get_dead_letter(dead_letter_id: str, services: ServicesDep) -> DeadLetterOut:
    return _out(services.queue.get_dead_letter(dead_letter_id))


def _replay(services: Services, letter: DeadLetter) -> None:
    """Requeue the job first, so the replayed message never finds it still failed; then send
    the dead letter back and a message for every other unfinished part of the job."""
    job = _job_of(letter)
    if job is not None:
        services.jobs.requeue(job.job_id)
    services.queue.resubmit_dead_letter(letter.id)
    if job is not None:
        others = [
            JobMessage(job.job_id, n).later_send(None, "replay")
            for n in services.jobs.pending_parts(job.job_id)
            if n != job.part
        ]
        services.queue.send(others)


@router.post(
    "/dead-letters/{dead_letter_id}/resubmit",
    response_model=DeadLetterOut,
    status_code=202,
    responses={404: PROBLEM_RESPONSE, 503: PROBLEM_RESPONSE},
    summary="Put a dead letter back on the queue and its job back to queued",
)
def resubmit_dead_letter(dead_letter_id: str, services: ServicesDep) -> DeadLetterOut:
    letter = services.queue.get_dead_letter(dead_letter_id)
    _replay(services, letter)
    return _out(letter)


@router.delete(
    "/dead-letters/{dead_letter_id}",
    status_code=204,
    responses={404: PROBLEM_RESPONSE},
    summary="Remove a dead letter for good",
)
def purge_dead_letter(dead_letter_id: str, services: ServicesDep) -> Response:
    services.queue.purge_dead_letter(dead_letter_id)
    return Response(status_code=204)
