"""Dead letters: inspect, replay and purge messages the workers gave up on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import PagingDep, ServicesDep
from api.problems import PROBLEM_RESPONSE
from api.schemas import DeadLetterOut, Page
from api.security import AdminAccess
from common.queue import DeadLetter
from common.usecases.dead_letters import job_of

router = APIRouter(tags=["dead letters"], dependencies=[AdminAccess])
DeadLetterId = Annotated[
    str,
    Path(max_length=40, description="A dead letter's id (its sequence number)."),
]


def _out(letter: DeadLetter) -> DeadLetterOut:
    job = job_of(letter)
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
def get_dead_letter(dead_letter_id: DeadLetterId, services: ServicesDep) -> DeadLetterOut:
    return _out(services.dead_letters.get(dead_letter_id))


@router.post(
    "/dead-letters/{dead_letter_id}/resubmit",
    response_model=DeadLetterOut,
    status_code=202,
    responses={404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE, 503: PROBLEM_RESPONSE},
    summary="Put a dead letter back on the queue and its job back to queued",
)
def resubmit_dead_letter(dead_letter_id: DeadLetterId, services: ServicesDep) -> DeadLetterOut:
    return _out(services.dead_letters.resubmit(dead_letter_id))


@router.delete(
    "/dead-letters/{dead_letter_id}",
    status_code=204,
    responses={404: PROBLEM_RESPONSE, 409: PROBLEM_RESPONSE},
    summary="Remove a dead letter for good; a job still waiting on it ends failed",
)
def purge_dead_letter(dead_letter_id: DeadLetterId, services: ServicesDep) -> Response:
    services.dead_letters.purge(dead_letter_id)
    return Response(status_code=204)
