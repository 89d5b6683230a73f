"""All-or-nothing loads, dry runs and replaces of a declared table with a unique column: the
checks at publish find a unique value repeated across the file's parts or held by another row
of the table, as a plain load does block by block."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.bootstrap import Services
from tests.support.flow import api_client, drain, job, upload
from tests.support.shop import shop_services

REGIONS = 200


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Services]:
    # Tiny blocks and parts: the file's first and last lines land in different parts.
    with shop_services(tmp_path, database_url, block_bytes=1024, part_bytes=1024) as services:
        yield services


@pytest.fixture
def client(shop: Services) -> Iterator[TestClient]:
    with api_client(shop) as c:
        yield c


def regions_file() -> bytes:
    lines = [f"{i};Region {i}" for i in range(1, REGIONS + 1)]
    lines += [f"{REGIONS + 1};Region 1", f"{REGIONS + 2};Taken"]
    return ("\n".join(lines) + "\n").encode()


def load(client: TestClient, shop: Services, **options: str) -> dict[str, object]:
    sent = upload(client, "regions", regions_file(), force="true", **options)
    drain(shop)
    return job(client, sent["job_id"])


def rules(client: TestClient, job_id: object) -> dict[int, list[str]]:
    page = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 100}).json()
    return {r["line"]: [f"{e['column']}:{e['rule']}" for e in r["errors"]] for r in page["items"]}


def region_count(client: TestClient) -> int:
    rows: int = client.get("/tables/regions").json()["rows"]
    return rows


@pytest.mark.parametrize("options", [{"atomic": "true"}, {"dry_run": "true"}])
def test_unique_values_repeated_in_the_file_or_held_in_the_table_are_rejected_at_publish(
    client: TestClient, shop: Services, options: dict[str, str]
) -> None:
    # Given a region holding the name "Taken",
    taken = {"region_id": 1000, "name": "Taken"}
    assert client.post("/tables/regions/rows", json={"rows": [taken]}).json()["inserted"] == 1

    # when a file of several parts repeats its first name on its last lines and uses "Taken",
    done = load(client, shop, **options)

    # then both lines are rejected with the rule, and every other row is published (or, in a
    # dry run, none is).
    assert done["parts"] > 1
    assert (done["status"], done["rows_rejected"]) == ("succeeded", 2), done
    assert rules(client, done["job_id"]) == {
        REGIONS + 1: ["name:duplicate_value"],
        REGIONS + 2: ["name:duplicate_value"],
    }
    assert region_count(client) == (1 if "dry_run" in options else REGIONS + 1)


def test_a_replace_holds_unique_values_to_the_file_alone(
    client: TestClient, shop: Services
) -> None:
    taken = {"region_id": 1000, "name": "Taken"}
    assert client.post("/tables/regions/rows", json={"rows": [taken]}).json()["inserted"] == 1

    done = load(client, shop, write="replace")

    # The row that held "Taken" is replaced away, so only the repeat within the file is refused.
    assert (done["status"], done["rows_inserted"], done["rows_rejected"]) == (
        "succeeded",
        REGIONS + 1,
        1,
    ), done
    assert rules(client, done["job_id"]) == {REGIONS + 1: ["name:duplicate_value"]}
    assert region_count(client) == REGIONS + 1
