"""Errors as RFC 9457 problem documents, with a message a person can act on."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from api.wording import sentence
from common.errors import (
    DeadLetterTaken,
    IngestError,
    JobFinished,
    JobNotFinished,
    MessageNotFound,
    NotAuthorised,
    NothingToRetry,
    PermanentError,
    TableBusy,
    TransientError,
    UnknownJob,
    UnknownTable,
)

log = structlog.get_logger("ingest.api")
PROBLEM_JSON = "application/problem+json"
PROBLEM_RESPONSE: dict[str, Any] = {
    "description": "A problem document (RFC 9457)",
    "content": {PROBLEM_JSON: {}},
}
RETRY_AFTER_SECONDS = 5


class Problem(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    request: Request,
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request, exc.status, exc.title, exc.detail, exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(sentence(e) for e in exc.errors()[:5])
        return problem_response(request, 422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        title = {
            404: "Not found",
            405: "Method not allowed",
            413: "Request body too large",
        }.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        return problem_response(request, exc.status_code, title, detail, headers)

    @app.exception_handler(IngestError)
    async def _ingest(request: Request, exc: IngestError) -> JSONResponse:
        if isinstance(exc, UnknownTable | UnknownJob | MessageNotFound):
            return problem_response(request, 404, "Not found", str(exc))
        if isinstance(exc, DeadLetterTaken):
            return problem_response(request, 409, "Dead letter taken", str(exc))
        if isinstance(exc, JobFinished):
            return problem_response(request, 409, "Job already over", str(exc))
        if isinstance(exc, JobNotFinished):
            return problem_response(request, 409, "Job not finished", str(exc))
        if isinstance(exc, NothingToRetry):
            return problem_response(request, 409, "Nothing to retry", str(exc))
        if isinstance(exc, TableBusy):
            return problem_response(
                request,
                409,
                "Table busy",
                str(exc),
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
                **exc.details,
            )
        if isinstance(exc, TransientError):
            # The client learns which dependency failed; hosts and driver text stay in the log.
            log.warning("service temporarily unavailable", error=str(exc), reason=exc.reason)
            return problem_response(
                request,
                503,
                "Service temporarily unavailable",
                f"the {exc.dependency} is not available right now; try again in a few seconds",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
                dependency=exc.dependency,
            )
        if isinstance(exc, NotAuthorised):
            # A deployment to fix, not a bug: which dependency and what to do; the rest is logged.
            log.error("a dependency refused the service's identity", error=str(exc))
            return problem_response(
                request,
                503,
                "Service not authorised",
                f"the {exc.dependency} refused the service's identity for this request; an "
                "operator must grant it the role it needs (see docs/deployment.md)",
                dependency=exc.dependency,
            )
        if isinstance(exc, PermanentError):
            log.error("request failed", error=str(exc))
        return problem_response(
            request, 500, "Internal error", "the request could not be completed"
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, _exc: ClientDisconnect) -> Response:
        # Nobody reads this answer; what the client had sent was already thrown away.
        log.info("client disconnected", path=request.url.path)
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem_response(
            request, 500, "Internal error", "the request could not be completed"
        )
