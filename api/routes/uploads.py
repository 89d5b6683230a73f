"""Uploads: stream CSV files into the blob store and queue a job for each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.load_options import Options
from api.problems import PROBLEM_RESPONSE, Problem
from api.schemas import JobOut, UploadsOut
from api.security import WriteAccess
from api.uploading import Receiving, UploadSink, receive_multipart, receive_raw, request_body
from common.bootstrap import Services
from common.model.catalog import load_order, table_spec
from common.model.jobs import Job
from common.model.options import LoadOptions, WriteMode
from common.usecases.submit import Submission, submit

router = APIRouter(tags=["uploads"], dependencies=[WriteAccess])

RAW_MEDIA_TYPES = frozenset(
    {"text/csv", "text/plain", "application/csv", "application/octet-stream", ""}
)

_ONE_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}
_MANY_FILES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                # One file field per declared table: api/openapi.py fills them in.
                "schema": {"type": "object", "properties": {}}
            }
        },
    }
}

Force = Annotated[
    bool, Query(description="Load the file even if identical content was loaded before.")
]
OnConflict = Annotated[
    Literal["reject", "update"],
    Query(description="What to do with a row whose id exists: reject it, or update the row."),
]


def _body(request: Request, services: Services) -> AsyncIterator[bytes]:
    settings = services.settings
    return request_body(
        request.stream(),
        limit=settings.max_upload_bytes,
        idle_seconds=settings.client_idle_seconds,
    )


def _receiving(services: Services, options: LoadOptions) -> Receiving:
    return Receiving(
        services.uploads,
        services.settings.part_bytes,
        services.settings.blob_chunk_bytes,
        quoted_newlines=options.allow_quoted_newlines,
    )


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _check_declared_size(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(
            413, "Upload too large", f"the body is larger than the limit of {limit} bytes"
        )


async def _submit(
    services: Services, sinks: list[UploadSink], how: Submission
) -> list[tuple[Job, bool]]:
    return await run_in_threadpool(
        lambda: submit(
            services.jobs,
            services.sends,
            services.queue,
            services.uploads,
            [sink.stored() for sink in sinks],
            how,
        )
    )


def _how(force: bool, on_conflict: str, options: LoadOptions) -> Submission:
    if options.write is WriteMode.REPLACE and on_conflict == "update":
        raise Problem(
            422,
            "Conflicting options",
            "write=replace makes the table exactly the file's rows: on_conflict=update has no "
            "meaning with it; leave one of them out",
        )
    return Submission(force=force, on_conflict=on_conflict, options=options)


def _answer(response: Response, jobs: list[tuple[JobOut, bool]]) -> None:
    response.status_code = 202 if any(created for _, created in jobs) else 200
    if len(jobs) == 1:
        response.headers["Location"] = f"/jobs/{jobs[0][0].job_id}"


@router.post(
    "/uploads/{table}",
    status_code=202,
    response_model=JobOut,
    openapi_extra=_ONE_FILE_BODY,
    summary="Upload one CSV file for a table",
    responses={
        200: {"description": "Identical content was uploaded before: the existing job."},
        404: PROBLEM_RESPONSE,
        413: PROBLEM_RESPONSE,
        415: PROBLEM_RESPONSE,
        422: PROBLEM_RESPONSE,
        503: PROBLEM_RESPONSE,
    },
)
async def upload_one(
    table: str,
    request: Request,
    response: Response,
    services: ServicesDep,
    options: Options,
    force: Force = False,
    on_conflict: OnConflict = "reject",
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> JobOut:
    table_spec(table)
    how = _how(force, on_conflict, options)
    _check_declared_size(request, services.settings.max_upload_bytes)
    media = _media_type(request)
    sink: UploadSink
    if media == "multipart/form-data":
        sinks = await receive_multipart(
            _receiving(services, options),
            request.headers["content-type"],
            _body(request, services),
            fixed_table=table,
        )
        if len(sinks) != 1:
            for extra in sinks:  # stored already; no job will ever own them
                await extra.discard()
            raise Problem(
                422,
                "Expected one file",
                f"send exactly one file in the multipart field 'file' (got {len(sinks)})",
            )
        sink = sinks[0]
    elif media in RAW_MEDIA_TYPES:
        sink = await receive_raw(
            _receiving(services, options), table, _body(request, services), filename
        )
    else:
        raise Problem(
            415,
            "Unsupported media type",
            f"Content-Type {media!r} is not accepted; send text/csv or multipart/form-data",
        )
    [(job, created)] = await _submit(services, [sink], how)
    out = JobOut.of(job)
    _answer(response, [(out, created)])
    return out


@router.post(
    "/uploads",
    status_code=202,
    response_model=UploadsOut,
    openapi_extra=_MANY_FILES_BODY,
    summary="Upload several CSV files at once, one multipart field per table",
    responses={
        200: {"description": "Every file was uploaded before."},
        413: PROBLEM_RESPONSE,
        415: PROBLEM_RESPONSE,
        422: PROBLEM_RESPONSE,
        503: PROBLEM_RESPONSE,
    },
)
async def upload_many(
    request: Request,
    response: Response,
    services: ServicesDep,
    options: Options,
    force: Force = False,
    on_conflict: OnConflict = "reject",
) -> UploadsOut:
    how = _how(force, on_conflict, options)
    if _media_type(request) != "multipart/form-data":
        raise Problem(
            415,
            "Unsupported media type",
            f"send multipart/form-data with one file field per table ({', '.join(load_order())})",
        )
    _check_declared_size(request, services.settings.max_upload_bytes)
    sinks = await receive_multipart(
        _receiving(services, options),
        request.headers["content-type"],
        _body(request, services),
        fixed_table=None,
    )
    if not sinks:
        raise Problem(
            422, "No files", f"the body holds no file field named {', '.join(load_order())}"
        )
    # Parents first: a child job waits only for parent uploads submitted before it.
    sinks.sort(key=lambda s: load_order().index(s.table))
    results = [(JobOut.of(job), created) for job, created in await _submit(services, sinks, how)]
    _answer(response, results)
    return UploadsOut(jobs=[job for job, _ in results])
