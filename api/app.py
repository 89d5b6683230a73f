"""The FastAPI application, assembled by :func:`create_app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import openapi
from api.dashboard import mount_dashboard
from api.limits import BodyLimit, NoNulBytes
from api.observability import RequestContext, metric_registries, request_latency
from api.problems import install_problem_handlers
from api.routes import backups, dead_letters, health, jobs, metrics, reports, tables, uploads
from common.bootstrap import Services, build_services
from common.metrics import ServiceCollector
from common.model.catalog import current
from common.model.catalog_file import load_catalog
from common.settings import Settings
from common.sql.migrate import upgrade


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The API wired to ``services`` (built from ``settings`` at startup when not given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        built = services or build_services(resolved)
        if own:
            upgrade(built.db)
        app.state.services = built
        app.state.metrics.register(ServiceCollector(built.db, built.queue))
        try:
            yield
        finally:
            if own:
                built.close()

    resolved = services.settings if services else (settings or Settings())
    # The catalog the services load into: activated when they were built, else read the way
    # building them at startup will read it.
    catalog = current() if services else load_catalog(resolved.catalog_file)
    app = FastAPI(
        title="CSV ingestion service",
        version="0.1.0",
        description=openapi.describe(catalog),
        lifespan=lifespan,
    )
    app.state.api_keys = resolved.keys
    app.state.metrics, own_metrics = metric_registries()
    app.add_middleware(BodyLimit, max_bytes=resolved.max_batch_bytes)
    app.add_middleware(NoNulBytes)
    app.add_middleware(RequestContext, latency=request_latency(own_metrics))
    install_problem_handlers(app)
    for router in (
        uploads.router,
        jobs.router,
        tables.router,
        reports.router if catalog.has_reports else reports.absent,
        dead_letters.router,
        backups.router,
        health.router,
        metrics.router,
    ):
        app.include_router(router)
    openapi.install(app, catalog)
    mount_dashboard(app)
    return app
