"""The API for whatever tables the catalog declares: ``GET /tables``, the OpenAPI document's row
schemas and file fields, uploads and batches into declared tables, and the reports only where
the catalog declares the tables they read.

Most tests run the in-process app on the shop catalog (tests/support/catalogs/shop.toml), on
SQLite and PostgreSQL; the last ones hold the shipped catalog to what it always gave.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.bootstrap import Services
from common.sql.catalog_tables import data_table
from tests.support.flow import api_client, drain, job, upload
from tests.support.shop import SHOP_ORDER, shop_services


@pytest.fixture
def shop(tmp_path: Path, database_url: str) -> Iterator[Services]:
    with shop_services(tmp_path, database_url) as services:
        yield services


@pytest.fixture
def client(shop: Services) -> Iterator[TestClient]:
    with api_client(shop) as c:
        yield c


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def stored(services: Services, table: str) -> list[dict[str, Any]]:
    t = data_table(table)
    with services.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t))]


# --- GET /tables ---------------------------------------------------------------------------------


def test_the_tables_are_listed_parents_first_with_their_columns_and_rows(
    client: TestClient,
) -> None:
    # Given two regions inserted,
    rows = [{"region_id": 1, "name": "North"}, {"region_id": 2, "name": "South"}]
    assert client.post("/tables/regions/rows", json={"rows": rows}).json()["inserted"] == 2

    answer = client.get("/tables")

    # the tables come parents first, though the file declares them children first,
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [t["name"] for t in body["tables"]] == SHOP_ORDER
    tables = by_name(body["tables"])
    # each with its rows,
    assert {name: t["rows"] for name, t in tables.items()} == dict.fromkeys(SHOP_ORDER, 0) | {
        "regions": 2
    }
    # key, CSV layout,
    stores, products = tables["stores"], tables["products"]
    assert (stores["primary_key"], stores["delimiter"], stores["skip_leading_rows"]) == (
        "store_id",
        ",",
        0,
    )
    assert (products["delimiter"], products["skip_leading_rows"]) == ("|", 1)
    assert tables["order_lines"]["delimiter"] == "\t"
    # and columns in the order of a line's fields, each with what applies to its type;
    assert [c["name"] for c in stores["columns"]] == [
        "code",
        "store_id",
        "region_id",
        "opened",
        "active",
    ]
    nothing = {"max_length": None, "precision": None, "scale": None, "timezone": None}
    assert by_name(stores["columns"])["region_id"] == {
        "name": "region_id",
        "type": "id",
        "required": True,
        "null_marker": None,
        "unique": False,
        "references": "regions",
        **nothing,
    }
    product = by_name(products["columns"])
    assert product["sku"] == {
        "name": "sku",
        "type": "text",
        "required": True,
        "null_marker": None,
        "unique": True,
        "references": None,
        **nothing,
        "max_length": 20,
    }
    assert (product["price"]["precision"], product["price"]["scale"]) == (10, 2)
    assert (product["discontinued"]["required"], product["discontinued"]["null_marker"]) == (
        False,
        "NULL",
    )
    assert product["weight_kg"]["null_marker"] == ""
    lines = by_name(tables["order_lines"]["columns"])
    assert (lines["delivered_at"]["timezone"], lines["delivered_at"]["null_marker"]) == (
        "required",
        "-",
    )
    assert by_name(tables["orders"]["columns"])["placed_at"]["timezone"] == "assume_utc"
    # and the reports are not served: the shop has no hires to count.
    assert body["reports"] is False


def test_one_table_is_described_and_an_unknown_one_is_a_problem_naming_the_tables(
    client: TestClient,
) -> None:
    stores = client.get("/tables/stores")
    assert stores.status_code == 200, stores.text
    assert (stores.json()["name"], stores.json()["rows"]) == ("stores", 0)

    unknown = client.get("/tables/hired_employees")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert all(name in unknown.json()["detail"] for name in SHOP_ORDER)


# --- the OpenAPI document -------------------------------------------------------------------------


def test_the_document_has_a_row_schema_per_table_with_its_columns_json_types(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]

    products = schemas["Row.products"]
    assert products["required"] == ["id", "sku", "price"]
    assert products["additionalProperties"] is False
    columns = products["properties"]
    assert columns["id"]["type"] == "integer" and columns["id"]["minimum"] == 1
    assert columns["sku"] == {
        "type": "string",
        "maxLength": 20,
        "description": "No two rows hold the same value.",
    }
    assert columns["price"]["anyOf"] == [{"type": "number"}, {"type": "string"}]
    assert columns["weight_kg"]["anyOf"] == [{"type": "number"}, {"type": "null"}]
    assert columns["discontinued"]["anyOf"] == [{"type": "boolean"}, {"type": "null"}]
    stores = schemas["Row.stores"]["properties"]
    assert stores["opened"] == {"type": "string", "format": "date"}
    assert stores["active"] == {"type": "boolean"}
    assert "regions" in stores["region_id"]["description"]
    lines = schemas["Row.order_lines"]["properties"]
    assert lines["quantity"]["type"] == "integer"
    assert lines["shipped_on"]["anyOf"] == [{"type": "string", "format": "date"}, {"type": "null"}]
    assert lines["delivered_at"]["anyOf"][0]["format"] == "date-time"
    placed_at = schemas["Row.orders"]["properties"]["placed_at"]
    assert placed_at["format"] == "date-time" and "UTC" in placed_at["description"]

    # A batch's rows are documented as rows of the tables, and the tables as the path's values.
    rows = schemas["BatchIn"]["properties"]["rows"]
    assert [r["$ref"] for r in rows["items"]["anyOf"]] == [
        f"#/components/schemas/Row.{name}" for name in SHOP_ORDER
    ]
    batch = document["paths"]["/tables/{table}/rows"]["post"]
    [table] = [p for p in batch["parameters"] if p["name"] == "table"]
    assert table["schema"]["enum"] == SHOP_ORDER


def test_the_document_has_a_file_field_per_table_and_no_reports(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    form = paths["/uploads"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert list(form["properties"]) == SHOP_ORDER
    products = form["properties"]["products"]
    assert products["format"] == "binary"
    assert "'|'" in products["description"] and "first line is skipped" in products["description"]
    assert not [p for p in paths if p.startswith("/reports")]
    assert "/tables" in paths and "/tables/{table}" in paths


def test_the_reports_are_a_problem_saying_the_catalog_lacks_their_tables(
    client: TestClient,
) -> None:
    for method, path in [
        ("GET", "/reports/hires-by-quarter"),
        ("GET", "/reports/departments-above-mean?year=2021"),
        ("POST", "/reports/verify"),
    ]:
        answer = client.request(method, path)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert "catalog" in answer.json()["detail"]
        assert "hired_employees" in answer.json()["detail"]


# --- batches and uploads into the shop's tables ---------------------------------------------------


def test_a_batch_goes_into_a_declared_table_and_a_bad_row_is_rejected_alone(
    client: TestClient, shop: Services
) -> None:
    rows = [
        {"region_id": 1, "name": "North"},
        {"region_id": 2, "name": "South", "population": 12},
    ]
    answer = client.post("/tables/regions/rows", json={"rows": rows})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["inserted"] == 1
    [rejected] = body["rejected"]
    assert rejected["index"] == 1
    assert [(e["column"], e["rule"]) for e in rejected["errors"]] == [
        ("population", "unknown_column")
    ]
    assert stored(shop, "regions") == [{"region_id": 1, "name": "North"}]


def test_files_sent_together_are_queued_parents_first(client: TestClient) -> None:
    files = [
        (name, (f"{name}.csv", b"1,x\n", "text/csv"))
        for name in ("order_lines", "orders", "stores")
    ]
    answer = client.post("/uploads", files=files)

    assert answer.status_code == 202, answer.text
    assert [j["table"] for j in answer.json()["jobs"]] == ["stores", "orders", "order_lines"]


def test_a_file_field_that_is_not_a_declared_table_is_refused_naming_the_tables(
    client: TestClient,
) -> None:
    files = [("departments", ("departments.csv", b"1,Sales\n", "text/csv"))]
    answer = client.post("/uploads", files=files)

    assert answer.status_code == 422
    assert all(name in answer.json()["detail"] for name in SHOP_ORDER)
    assert client.post("/uploads/departments", content=b"1,Sales\n").status_code == 404


def test_an_upload_into_a_declared_table_is_checked_against_its_references(
    client: TestClient, shop: Services
) -> None:
    # Given orders of a store that does not exist, one of them with a store id that is no id,
    sent = upload(client, "orders", b"1,7,2021-01-01T00:00:00Z,first\n2,x,2021-01-01T00:00:00Z,\n")

    drain(shop)

    # then the job goes through and each row is rejected with its reason.
    done = job(client, sent["job_id"])
    assert (done["table"], done["status"], done["rows_read"]) == ("orders", "succeeded", 2)
    assert (done["rows_inserted"], done["rows_rejected"]) == (0, 2)
    items = client.get(f"/jobs/{sent['job_id']}/rejected-rows").json()["items"]
    assert [(e["column"], e["rule"]) for e in items[0]["errors"]] == [
        ("store_id", "unknown_reference")
    ]
    assert items[1]["errors"][0]["column"] == "store_id"


def test_a_file_in_the_table_s_own_delimiter_is_loaded(client: TestClient, shop: Services) -> None:
    sent = upload(client, "regions", b"1;North\n2;South\n")

    drain(shop)

    assert job(client, sent["job_id"])["rows_inserted"] == 2
    assert client.get("/tables/regions").json()["rows"] == 2


# --- the shipped catalog --------------------------------------------------------------------------


def test_the_shipped_catalog_lists_its_three_tables_and_serves_the_reports(
    services: Services,
) -> None:
    with api_client(services) as shipped:
        answer = shipped.get("/tables").json()
        document = shipped.get("/openapi.json").json()

    assert [t["name"] for t in answer["tables"]] == ["departments", "jobs", "hired_employees"]
    assert answer["reports"] is True
    hires = by_name(answer["tables"])["hired_employees"]
    assert [c["name"] for c in hires["columns"]] == [
        "id",
        "name",
        "datetime",
        "department_id",
        "job_id",
    ]
    assert by_name(hires["columns"])["datetime"]["timezone"] == "required"
    row = document["components"]["schemas"]["Row.hired_employees"]["properties"]
    assert row["datetime"]["format"] == "date-time"
    assert row["department_id"]["type"] == "integer"
    assert "/reports/hires-by-quarter" in document["paths"]
    form = document["paths"]["/uploads"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert list(form["schema"]["properties"]) == ["departments", "jobs", "hired_employees"]
