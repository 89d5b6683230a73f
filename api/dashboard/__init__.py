"""The operator's dashboard: one page at ``/`` and its scripts, served by the API itself.

The page holds no data: its scripts read and act through the JSON API with the operator's key,
so the dashboard can do nothing the API would not let that key do. Nothing is fetched from
elsewhere, which the page's Content-Security-Policy enforces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _Assets(StaticFiles):
    """The page's scripts and styles, revalidated on every load so a new release shows at once
    (the ETag makes that a 304 when nothing changed)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_dashboard(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``/dashboard/``."""
    app.mount("/dashboard", _Assets(directory=STATIC), name="dashboard")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)
