"""The ``ingest`` command line against a service started on the shop catalog: the tables and the
order of a folder's uploads come from the service, and the reports say they are not served.

The service is the real one (supervisor, API and one worker) with ``CATALOG_FILE`` set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import ingest
from tests.support.processes import Started, supervisor
from tests.support.shop import SHOP, SHOP_ORDER


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    with supervisor(tmp_path_factory.mktemp("shop"), workers=1, CATALOG_FILE=str(SHOP)) as started:
        yield started


@pytest.fixture(scope="module")
def url(service: Started) -> str:
    assert service.base_url is not None
    return service.base_url


def test_tables_lists_the_declared_tables_parents_first_with_their_rows(url: str) -> None:
    run = ingest(url, "tables")

    assert run.code == 0, run
    lines = run.stdout.splitlines()
    listed = [line.split()[0] for line in lines if line.split() and line.split()[0] in SHOP_ORDER]
    assert listed == SHOP_ORDER
    [stores] = [line for line in lines if line.startswith("stores")]
    assert "store_id id" in stores and "code text(12)" in stores
    # For programs, the API's answer as it came.
    assert ingest(url, "tables", "--json").json() == httpx.get(f"{url}/tables").json()


def test_one_table_shows_a_column_per_line(url: str) -> None:
    run = ingest(url, "tables", "products")

    assert run.code == 0, run
    assert "products: 0 rows, delimiter '|', 1 leading row(s) skipped" in run.stdout
    columns = {line.split()[0]: line for line in run.stdout.splitlines()[1:] if line.strip()}
    assert "primary key" in columns["id"]
    assert "decimal(10, 2)" in columns["price"]
    assert "optional (null: 'NULL')" in columns["discontinued"]
    assert "unique" in columns["sku"]


def test_an_unknown_table_is_one_line_naming_the_tables(url: str) -> None:
    run = ingest(url, "tables", "departments")

    assert run.code == 2, run
    [line] = run.stderr.strip().splitlines()
    assert all(name in line for name in SHOP_ORDER)


def test_upload_all_sends_the_folder_s_table_files_parents_first(url: str, tmp_path: Path) -> None:
    # Given a folder with files of two shop tables and one of a table the shop does not declare,
    (tmp_path / "orders.csv").write_text("1,1,2021-01-01T00:00:00Z,first\n", encoding="utf-8")
    (tmp_path / "regions.csv").write_text("1;North\n", encoding="utf-8")
    (tmp_path / "departments.csv").write_text("1,Sales\n", encoding="utf-8")

    run = ingest(url, "--json", "upload-all", str(tmp_path))

    # then the shop's files go, parents first, and the other one stays.
    assert run.code == 0, run
    assert [job["table"] for job in run.json()["jobs"]] == ["regions", "orders"]


def test_the_reports_say_the_catalog_lacks_their_tables(url: str) -> None:
    run = ingest(url, "report", "hires-by-quarter")

    assert run.code == 2, run
    assert "No reports" in run.stderr and "catalog" in run.stderr
