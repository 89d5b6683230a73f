"""Inserting JSON batches of 1 to 1000 rows: valid rows in, invalid rows explained and kept."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.bootstrap import Services
from common.sql.schema import batch_rejections, batches
from tests.support.flow import api_client, table_ids, table_rows

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with api_client(services) as c:
        yield c


def post_rows(client: TestClient, table: str, rows: Any, **params: str) -> Any:
    return client.post(f"/tables/{table}/rows", json={"rows": rows}, params=params)


def departments(first: int, n: int) -> list[dict[str, Any]]:
    return [{"id": i, "department": f"Department {i}"} for i in range(first, first + n)]


def hire(ident: int, **changes: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "name": f"Person {ident}",
        "datetime": "2021-07-27T16:02:08Z",
        "department_id": 1,
        "job_id": 1,
    } | changes


def stored_batch_rejections(services: Services, batch_id: str) -> list[tuple[int, str]]:
    with services.db.read() as conn:
        return [
            (r.idx, r.table_name)
            for r in conn.execute(
                select(batch_rejections.c.idx, batches.c.table_name)
                .join(batches, batches.c.seq == batch_rejections.c.batch_seq)
                .where(batches.c.batch_id == batch_id)
                .order_by(batch_rejections.c.idx)
            )
        ]


@pytest.mark.parametrize("size", [1, 1000])
def test_a_batch_of_one_to_a_thousand_rows_is_inserted(
    client: TestClient, services: Services, size: int
) -> None:
    response = post_rows(client, "departments", departments(1, size))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["inserted"], body["updated"], body["rejected"]) == (size, 0, [])
    assert table_ids(services, "departments") == list(range(1, size + 1))


@pytest.mark.parametrize("size", [0, 1001])
def test_a_batch_outside_one_to_a_thousand_rows_is_a_422_problem(
    client: TestClient, services: Services, size: int
) -> None:
    response = post_rows(client, "departments", departments(1, size))

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "rows" in response.json()["detail"]
    assert table_ids(services, "departments") == []


@pytest.mark.parametrize(
    "body",
    [{"rows": "1,Sales"}, {"rows": [1, 2]}, {"rows": [["1", "Sales"]]}, {"data": []}, [1]],
    ids=["rows-not-a-list", "numbers", "lists", "no-rows-key", "body-not-an-object"],
)
def test_a_body_that_is_not_a_list_of_row_objects_is_a_422_problem(
    client: TestClient, services: Services, body: Any
) -> None:
    response = client.post("/tables/departments/rows", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert table_ids(services, "departments") == []


def test_an_unknown_table_is_a_404_problem(client: TestClient) -> None:
    response = post_rows(client, "employees", [{"id": 1}])

    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "employees" in response.json()["detail"]


def test_valid_rows_go_in_and_invalid_ones_are_explained_and_kept(
    client: TestClient, services: Services
) -> None:
    # Given departments and jobs to refer to
    post_rows(client, "departments", departments(1, 2))
    post_rows(client, "jobs", [{"id": 1, "job": "Clerk"}])

    # When a batch mixes good rows with broken ones
    batch = [
        hire(10),
        hire(11, name=""),
        hire(12, datetime="2021-07-27T18:02:08+02:00"),
        hire(13, datetime="2021-07-27 16:02:08"),
        hire(0),
        hire(14, extra="x"),
    ]
    response = post_rows(client, "hired_employees", batch)

    # Then the good rows are inserted and each bad one is answered with its index and reasons
    assert response.status_code == 200
    body = response.json()
    assert body["inserted"] == 2
    assert [
        (r["index"], r["row"], [(e["column"], e["rule"]) for e in r["errors"]])
        for r in body["rejected"]
    ] == [
        (1, batch[1], [("name", "required")]),
        (3, batch[3], [("datetime", "missing_timezone")]),
        (4, batch[4], [("id", "not_positive")]),
        (5, batch[5], [("extra", "unknown_column")]),
    ]
    assert {r["id"]: r["datetime"] for r in table_rows(services, "hired_employees")} == {
        10: datetime(2021, 7, 27, 16, 2, 8),
        12: datetime(2021, 7, 27, 16, 2, 8),
    }
    # And the rejections are stored under the batch
    assert stored_batch_rejections(services, body["batch_id"]) == [
        (1, "hired_employees"),
        (3, "hired_employees"),
        (4, "hired_employees"),
        (5, "hired_employees"),
    ]


def test_an_id_already_in_the_table_is_a_duplicate(client: TestClient, services: Services) -> None:
    post_rows(client, "departments", [{"id": 1, "department": "Sales"}])

    body = post_rows(
        client, "departments", [{"id": 1, "department": "Other"}, {"id": 2, "department": "HR"}]
    ).json()

    assert body["inserted"] == 1
    assert [(r["index"], [e["rule"] for e in r["errors"]]) for r in body["rejected"]] == [
        (0, ["duplicate_id"])
    ]
    assert {r["id"]: r["department"] for r in table_rows(services, "departments")} == {
        1: "Sales",
        2: "HR",
    }


def test_an_id_twice_in_one_batch_keeps_the_first(client: TestClient, services: Services) -> None:
    body = post_rows(
        client, "departments", [{"id": 5, "department": "First"}, {"id": 5, "department": "Second"}]
    ).json()

    assert body["inserted"] == 1
    assert [(r["index"], r["errors"][0]["rule"]) for r in body["rejected"]] == [(1, "duplicate_id")]
    assert [r["department"] for r in table_rows(services, "departments")] == ["First"]


def test_unknown_department_and_job_ids_are_unknown_references(
    client: TestClient, services: Services
) -> None:
    post_rows(client, "departments", departments(1, 1))
    post_rows(client, "jobs", [{"id": 1, "job": "Clerk"}])

    body = post_rows(
        client,
        "hired_employees",
        [
            hire(1),
            hire(2, department_id=99),
            hire(3, job_id=77),
            hire(4, department_id=5, job_id=6),
        ],
    ).json()

    assert body["inserted"] == 1
    assert {
        r["index"]: [(e["column"], e["rule"]) for e in r["errors"]] for r in body["rejected"]
    } == {
        1: [("department_id", "unknown_reference")],
        2: [("job_id", "unknown_reference")],
        3: [("department_id", "unknown_reference"), ("job_id", "unknown_reference")],
    }
    assert "99" in body["rejected"][0]["errors"][0]["message"]
    assert table_ids(services, "hired_employees") == [1]
    assert len(stored_batch_rejections(services, body["batch_id"])) == 3


def test_on_conflict_update_replaces_existing_rows_and_inserts_new_ones(
    client: TestClient, services: Services
) -> None:
    post_rows(client, "departments", [{"id": 1, "department": "Sales"}])

    response = post_rows(
        client,
        "departments",
        [{"id": 1, "department": "Sales EMEA"}, {"id": 2, "department": "Legal"}],
        on_conflict="update",
    )

    body = response.json()
    assert (body["inserted"], body["updated"], body["rejected"]) == (1, 1, [])
    assert {r["id"]: r["department"] for r in table_rows(services, "departments")} == {
        1: "Sales EMEA",
        2: "Legal",
    }


def test_on_conflict_update_still_refuses_unknown_references(
    client: TestClient, services: Services
) -> None:
    post_rows(client, "departments", departments(1, 1))
    post_rows(client, "jobs", [{"id": 1, "job": "Clerk"}])
    post_rows(client, "hired_employees", [hire(1)])

    body = post_rows(
        client, "hired_employees", [hire(1, department_id=42)], on_conflict="update"
    ).json()

    assert (body["inserted"], body["updated"]) == (0, 0)
    assert [e["rule"] for e in body["rejected"][0]["errors"]] == ["unknown_reference"]
    assert table_rows(services, "hired_employees")[0]["department_id"] == 1


def test_an_unknown_on_conflict_value_is_a_422_problem(client: TestClient) -> None:
    response = post_rows(client, "departments", departments(1, 1), on_conflict="ignore")

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


def test_an_atomic_batch_with_a_rejected_row_inserts_nothing_and_is_a_422_problem(
    client: TestClient, services: Services
) -> None:
    # Given a department already in the table
    post_rows(client, "departments", [{"id": 1, "department": "Sales"}])

    # When an atomic batch holds new rows, a duplicate and a row without a name
    batch = [
        {"id": 2, "department": "HR"},
        {"id": 1, "department": "Sales again"},
        {"id": 3, "department": ""},
        {"id": 4, "department": "Legal"},
    ]
    response = post_rows(client, "departments", batch, atomic="true")

    # Then nothing is inserted and the problem lists every rejection as a batch answer does
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert "atomic" in body["detail"]
    assert [
        (r["index"], r["row"], [(e["column"], e["rule"]) for e in r["errors"]])
        for r in body["rejected"]
    ] == [
        (1, batch[1], [("id", "duplicate_id")]),
        (2, batch[2], [("department", "required")]),
    ]
    assert table_ids(services, "departments") == [1]
    # And the rejections are stored under the refused batch
    assert stored_batch_rejections(services, body["batch_id"]) == [
        (1, "departments"),
        (2, "departments"),
    ]


def test_an_atomic_batch_without_rejections_is_inserted_whole(
    client: TestClient, services: Services
) -> None:
    response = post_rows(client, "departments", departments(1, 3), atomic="true")

    assert response.status_code == 200, response.text
    assert (response.json()["inserted"], response.json()["rejected"]) == (3, [])
    assert table_ids(services, "departments") == [1, 2, 3]


def test_an_atomic_batch_refuses_ids_a_concurrent_batch_inserted(
    client: TestClient, services: Services
) -> None:
    # Given two atomic batches of the same thousand ids, sent at the same time
    def send(name: str) -> Any:
        rows = [{"id": i, "department": f"{name} {i}"} for i in range(1, 1001)]
        return post_rows(client, "departments", rows, atomic="true")

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(send, ["First", "Second"]))

    # Then one is inserted whole and the other refused whole, whatever the interleaving
    assert sorted(a.status_code for a in answers) == [200, 422]
    outcome = dict(zip([a.status_code for a in answers], ["First", "Second"], strict=True))
    won, lost = outcome[200], answers[0 if outcome[422] == "First" else 1].json()
    assert len(lost["rejected"]) == 1000
    assert {r["department"].split()[0] for r in table_rows(services, "departments")} == {won}
    assert table_ids(services, "departments") == list(range(1, 1001))


def test_the_openapi_document_describes_the_atomic_parameter(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/tables/{table}/rows"]["post"]

    [atomic] = [p for p in operation["parameters"] if p["name"] == "atomic"]
    assert atomic["in"] == "query"
    assert atomic["schema"]["type"] == "boolean"
    assert "none is inserted" in atomic["description"]
