"""Fuzzing the API from its own OpenAPI document: no answer is a 5xx, every answer is declared.

Schemathesis generates requests for every operation (valid and invalid ones) and sends them to
the real app in-process (ASGI), wired to services on SQLite (in a temporary folder) and on
PostgreSQL, each already holding the sample departments and jobs, one upload and one batch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from common.sql.db import Database
from common.sql.migrate import upgrade
from tests.conftest import SAMPLE_DATA, make_settings
from tests.support.flow import api_client, drain, service_set
from tests.support.services import postgres_database

MAX_EXAMPLES = 25

# The document does not depend on the services: an app that is never started gives it.
_DOCUMENT = create_app(make_settings(Path(tempfile.gettempdir()), "sqlite://")).openapi()
schema = schemathesis.openapi.from_dict(_DOCUMENT)


@contextmanager
def _database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'ingest.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """The real app on SQLite or PostgreSQL, holding some data."""
    folder = tmp_path_factory.mktemp("fuzz")
    with _database(request.param, folder) as url:
        db = Database.from_url(url)
        upgrade(db)
        db.dispose()
        yield from _app_with_data(folder, url)


def _app_with_data(folder: Path, url: str) -> Iterator[FastAPI]:
    with service_set(folder, url) as services:
        # Given some data, so that lists, rejections and reports have rows to answer with
        with api_client(services) as client:
            files = [
                (table, (f"{table}.csv", (SAMPLE_DATA / f"{table}.csv").read_bytes(), "text/csv"))
                for table in ("departments", "jobs")
            ]
            assert client.post("/uploads", files=files).status_code == 202
            drain(services)
            hires = b"1,Ann,2021-02-03T04:05:06Z,1,1\n2,Bob,2021-05-03T04:05:06Z,2,3\n3,,x,1,1\n"
            assert client.post("/uploads/hired_employees", content=hires).status_code == 202
            drain(services)
            batch = {"rows": [{"id": 4, "name": "Cy", "datetime": "2021-08-01T00:00:00Z"}]}
            assert client.post("/tables/hired_employees/rows", json=batch).status_code == 200
        yield create_app(services.settings, services)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_makes_the_api_fail_or_break_its_document(
    case: schemathesis.Case, fuzzed_app: FastAPI
) -> None:
    case.call_and_validate(app=fuzzed_app, checks=[not_a_server_error, response_schema_conformance])
