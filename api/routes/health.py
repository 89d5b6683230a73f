"""Liveness and readiness."""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.schemas import HealthOut
from common.errors import IngestError

log = structlog.get_logger("ingest.api")

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="The process is up")
def healthz() -> HealthOut:
    return HealthOut(status="ok")


@router.get(
    "/readyz",
    response_model=HealthOut,
    responses={503: {"model": HealthOut}},
    summary="Database, blob store and queue are reachable",
)
def readyz(services: ServicesDep) -> HealthOut | JSONResponse:
    checks: dict[str, str] = {}
    for name, ping in (
        ("database", services.db.ping),
        ("blob_store", services.blob.ping),
        ("queue", services.queue.ping),
    ):
        try:
            ping()
            checks[name] = "ok"
        except IngestError as exc:
            # Which dependency is down is for anyone to see; why (hosts, ports) only in the log.
            log.warning("readiness check failed", dependency=name, error=str(exc))
            checks[name] = "unavailable"
    if all(v == "ok" for v in checks.values()):
        return HealthOut(status="ok", checks=checks)
    return JSONResponse(
        HealthOut(status="unavailable", checks=checks).model_dump(), status_code=503
    )
