"""``ingest catalog check`` and ``ingest catalog diff``: a catalog file checked before the service
starts with it, alone and against the database it would start on (SQLite and PostgreSQL).

Each command runs as its own process, as an operator runs it; neither talks to the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.bootstrap import Services
from tests.support.cli import Run, ingest
from tests.support.shop import SHOP, SHOP_ORDER, shop_services

NO_SERVICE = "http://127.0.0.1:9"  # the catalog commands never call it
SHIPPED = Path(__file__).resolve().parents[2] / "common" / "catalog.toml"
BROKEN = """
[tables.regions]
columns = [{ name = "region_id", type = "id" }, { name = "name", type = "txt" }]

[tables.stores]
columns = [
  { name = "store_id", type = "id" },
  { name = "region_id", type = "id", references = "zones" },
]
colour = "red"
"""


def catalog_cli(*args: str, **env: str) -> Run:
    return ingest(NO_SERVICE, "catalog", *args, env=env)


def test_check_summarises_a_good_file(tmp_path: Path) -> None:
    run = catalog_cli("check", str(SHOP))

    assert run.code == 0, run
    assert "5 table(s), 23 columns" in run.stdout
    assert f"loaded parents first: {', '.join(SHOP_ORDER)}" in run.stdout
    assert "no reports" in run.stdout
    assert run.stderr == ""
    # The shipped catalog serves the reports, so nothing is said about them.
    shipped = catalog_cli("check", str(SHIPPED))
    assert shipped.code == 0, shipped
    assert "departments, jobs, hired_employees" in shipped.stdout
    assert "reports" not in shipped.stdout


def test_check_names_every_mistake_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(BROKEN, encoding="utf-8")

    run = catalog_cli("check", str(path))

    assert run.code == 2, run
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 3, lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert any("'name'" in line and "unknown type 'txt'" in line for line in lines)
    assert any("'colour'" in line for line in lines)
    assert any("'zones'" in line and "not declared" in line for line in lines)


def test_check_says_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    run = catalog_cli("check", str(tmp_path / "missing.toml"))

    assert run.code == 2, run
    assert "missing.toml: cannot be read" in run.stderr


def test_check_answers_json_for_programs() -> None:
    run = catalog_cli("check", str(SHOP), "--json")

    assert run.code == 0, run
    assert run.json() == {"tables": SHOP_ORDER, "reports": False}


# --- diff -----------------------------------------------------------------------------------------


def test_diff_lists_the_tables_a_new_catalog_would_create(database_url: str) -> None:
    # Given a database the service ran on with the shipped catalog,
    run = catalog_cli("diff", str(SHOP), DATABASE_URL=database_url)

    # then starting it on the shop would create the shop's tables and refuse nothing.
    assert run.code == 0, run
    lines = run.stdout.splitlines()
    assert lines[:2] == ["apply: create table regions", "apply: create table stage_regions"]
    assert len(lines) == 2 * len(SHOP_ORDER)
    assert not [line for line in lines if line.startswith("refuse")]


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Services]:
    """A database the service ran on with the shop catalog."""
    with shop_services(tmp_path, database_url) as services:
        yield services


def test_diff_says_when_the_database_matches(shop: Services, database_url: str) -> None:
    # Without FILE, the catalog is the one the service is configured with.
    run = catalog_cli("diff", DATABASE_URL=database_url, CATALOG_FILE=str(SHOP))

    assert run.code == 0, run
    assert run.stdout.startswith(f"the database matches {SHOP}")


def test_diff_tells_what_would_be_applied_from_what_would_stop_the_start(
    shop: Services, database_url: str, tmp_path: Path
) -> None:
    # Given the shop's catalog with an optional column added, a required one added and a text
    # column declared as an integer,
    text = SHOP.read_text(encoding="utf-8")
    text = text.replace(
        '{ name = "note", type = "text", required = false, max_length = 200 },',
        '{ name = "note", type = "text", required = false, max_length = 200 },\n'
        '  { name = "channel", type = "text", required = false },\n'
        '  { name = "total", type = "integer" },',
    )
    text = text.replace(
        '{ name = "name", type = "text", max_length = 40, unique = true }',
        '{ name = "name", type = "integer", unique = true }',
    )
    changed = tmp_path / "shop.toml"
    changed.write_text(text, encoding="utf-8")

    run = catalog_cli("diff", str(changed), DATABASE_URL=database_url)

    # then the command lists both kinds, and fails because the service would not start.
    assert run.code == 1, run
    lines = run.stdout.splitlines()
    assert "apply: table orders: add column channel" in lines
    refused = [line for line in lines if line.startswith("refuse: ")]
    assert len(refused) == 2, lines
    assert any("table regions: column name is text" in line for line in refused)
    assert any("new column total is required" in line for line in refused)
    assert "would not start" in lines[-1]

    as_json = catalog_cli("diff", str(changed), "--json", DATABASE_URL=database_url)
    assert as_json.code == 1, as_json
    answer = as_json.json()
    assert answer["apply"] == ["table orders: add column channel"]
    assert len(answer["refuse"]) == 2


def test_diff_of_a_broken_file_names_its_mistakes(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(BROKEN, encoding="utf-8")

    run = catalog_cli("diff", str(path), DATABASE_URL=database_url)

    assert run.code == 2, run
    assert len(run.stderr.splitlines()) == 3
