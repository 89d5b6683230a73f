"""Fuzzing what the catalog shapes, from the OpenAPI document of a service on the shop catalog:
the tables, batches of rows generated from each table's row schema, and uploads. No answer is
a 5xx and every answer is one the document declares.

Like test_fuzz_api.py, Schemathesis sends the requests to the real app in-process, wired to
services on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.app import create_app
from tests.conftest import make_settings
from tests.support.services import postgres_database
from tests.support.shop import SHOP, shop_services

MAX_EXAMPLES = 25
BATCH = "/tables/{table}/rows"

# Read from the catalog file alone: making the app activates no catalog.
_SETTINGS = make_settings(Path(tempfile.gettempdir()), "sqlite://", catalog_file=SHOP)
schema = schemathesis.openapi.from_dict(create_app(_SETTINGS).openapi())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    folder = tmp_path_factory.mktemp("fuzz-shop")
    if request.param == "sqlite":
        with shop_services(folder, f"sqlite:///{folder / 'ingest.db'}") as services:
            yield create_app(services.settings, services)
        return
    with postgres_database() as url, shop_services(folder, url) as services:
        yield create_app(services.settings, services)


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CHECKS = [not_a_server_error, response_schema_conformance]


@schema.include(path_regex="^/(tables|uploads)").exclude(path=BATCH).parametrize()
@FUZZ
def test_no_request_about_the_shop_s_tables_makes_the_api_fail(
    case: schemathesis.Case, shop_app: FastAPI
) -> None:
    case.call_and_validate(app=shop_app, checks=CHECKS)


@schema.include(path=BATCH, method="POST").parametrize()
@FUZZ
def test_no_batch_of_rows_of_the_shop_s_tables_makes_the_api_fail(
    case: schemathesis.Case, shop_app: FastAPI
) -> None:
    case.call_and_validate(app=shop_app, checks=CHECKS)
