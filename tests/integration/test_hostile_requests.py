"""Hostile and clumsy requests get a 4xx problem a person can act on and cost nothing: NUL
bytes, huge names and boundaries, oversized and idle uploads, clients that go away; answers
about failures name the dependency and nothing about hosts; CSV answers carry no formulas."""

from __future__ import annotations

import csv
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient

from api.csvout import neutralised
from common.bootstrap import Services
from common.errors import BlobStoreUnavailable, DatabaseUnavailable
from tests.support.flow import api_client, drain, service_set, upload
from tests.support.serving import serving

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def small(tmp_path: Path, database_url: str) -> Iterator[Services]:
    """Services whose uploads may hold at most 100 KB and whose clients may idle 0.5 s."""
    with service_set(
        tmp_path, database_url, max_upload_bytes=100_000, client_idle_seconds=0.5
    ) as built:
        yield built


@pytest.fixture
def client(small: Services) -> Iterator[TestClient]:
    with api_client(small) as c:
        yield c


def historic(services: Services) -> list[str]:
    return [b.name for b in services.blob.list(services.settings.blob_container_name_historic)]


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM_JSON)  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert body["detail"]
    return body


# --- NUL bytes, names, boundaries, ids ------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/uploads/departments?filename=a%00b.csv",
        "/jobs?table=jobs%00",
        "/jobs/abc%00def",
        "/jobs/abc%00def/rejected-rows",
    ],
)
def test_a_nul_byte_in_the_path_or_query_is_a_400(client: TestClient, path: str) -> None:
    if path.startswith("/uploads"):
        answer = client.post(path, content=b"1,Sales\n", headers={"content-type": "text/csv"})
    else:
        answer = client.get(path)
    assert "NUL" in str(assert_problem(answer, 400)["detail"])


def test_a_multipart_file_name_over_255_characters_is_a_422_and_keeps_nothing(
    client: TestClient, small: Services
) -> None:
    answer = client.post(
        "/uploads/departments", files={"file": ("x" * 300 + ".csv", b"1,Sales\n", "text/csv")}
    )
    assert "304 characters" in str(assert_problem(answer, 422)["detail"])
    assert historic(small) == []


def test_a_multipart_boundary_over_70_characters_is_a_400(client: TestClient) -> None:
    boundary = "b" * 257
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        f"1,Sales\r\n--{boundary}--\r\n"
    )
    answer = client.post(
        "/uploads/departments",
        content=body.encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "boundary" in str(assert_problem(answer, 400)["detail"])


@pytest.mark.parametrize("letter", ["99999999999999999999", "2147483648", "-1", "x"])
def test_a_dead_letter_id_out_of_any_range_is_a_404(client: TestClient, letter: str) -> None:
    assert_problem(client.get(f"/dead-letters/{letter}"), 404)
    assert_problem(client.delete(f"/dead-letters/{letter}"), 404)


# --- sizes ----------------------------------------------------------------------------------


def test_the_upload_limit_counts_every_file_of_a_chunked_multipart_body(
    client: TestClient, small: Services
) -> None:
    files = {
        table: (f"{table}.csv", b"1,x\n" * 15_000, "text/csv")  # 60 KB each
        for table in ("departments", "jobs", "hired_employees")
    }

    answer = client.post("/uploads", files=files, headers={"transfer-encoding": "chunked"})

    assert "MAX_UPLOAD_BYTES" in str(assert_problem(answer, 413)["detail"])
    assert historic(small) == []
    assert small.jobs.page(10, 0)[1] == 0


def test_the_upload_limit_counts_fields_that_are_not_files(
    client: TestClient, small: Services
) -> None:
    answer = client.post(
        "/uploads/departments",
        files={"file": ("d.csv", b"1,x\n" * 15_000, "text/csv")},
        data={"note": "n" * 50_000},
    )
    assert_problem(answer, 413)
    assert historic(small) == []


# --- slow and vanishing clients -------------------------------------------------------------


def _raw_request(url: str, head: str, body: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(head.encode() + body)
    return sock


def test_a_client_that_stops_sending_is_cut_off_with_a_408_and_leaves_no_file(
    small: Services,
) -> None:
    with serving(small) as url:
        sock = _raw_request(
            url,
            "POST /uploads/departments HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            "Content-Length: 100000\r\n\r\n",
            b"1,Sales\n" * 100,
        )
        sock.settimeout(10)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        sock.close()

    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"CLIENT_IDLE_SECONDS" in answer
    assert historic(small) == []
    assert small.jobs.page(10, 0)[1] == 0


def test_a_client_that_goes_away_mid_upload_is_logged_as_such_and_leaves_no_file(
    small: Services,
) -> None:
    with structlog.testing.capture_logs() as logs, serving(small) as url:
        sock = _raw_request(
            url,
            "POST /uploads/departments HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            "Content-Length: 100000\r\n\r\n",
            b"1,Sales\n" * 100,
        )
        time.sleep(0.1)
        sock.close()
        deadline = time.monotonic() + 10
        while not any(e["event"] == "client disconnected" for e in logs):
            assert time.monotonic() < deadline, logs
            time.sleep(0.05)

    gone = [e for e in logs if e["event"] == "client disconnected"]
    assert gone[0]["log_level"] == "info"
    assert not [e for e in logs if e["log_level"] == "error"], logs
    assert historic(small) == []


# --- failures name the dependency, not the host ---------------------------------------------


def test_readyz_names_the_dependency_that_is_down_and_nothing_about_it(
    client: TestClient, small: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise BlobStoreUnavailable("connection to 10.20.30.40:10000 refused (ECONNREFUSED)")

    monkeypatch.setattr(small.blob, "ping", down)
    answer = client.get("/readyz")

    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "database": "ok",
        "blob_store": "unavailable",
        "queue": "ok",
    }
    assert "10.20.30.40" not in answer.text


def test_a_503_names_the_database_and_not_its_address(
    client: TestClient, small: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object, **_kwargs: object) -> None:
        raise DatabaseUnavailable(
            'connection to server at "db.internal" (10.0.0.7), port 5432 failed: '
            'duplicate key value violates unique constraint "departments_pkey"'
        )

    monkeypatch.setattr(small.db, "write", down)
    answer = client.post(
        "/tables/departments/rows", json={"rows": [{"id": 1, "department": "Sales"}]}
    )

    body = assert_problem(answer, 503)
    assert body["dependency"] == "database"
    assert answer.headers["retry-after"]
    for leak in ("db.internal", "10.0.0.7", "5432", "departments_pkey"):
        assert leak not in answer.text


# --- CSV answers ----------------------------------------------------------------------------


def test_csv_answers_neutralise_formulas_but_keep_numbers(
    client: TestClient, small: Services
) -> None:
    # Given a rejected line that is a formula, and a department whose name is one
    body = b"=cmd|' /C calc'!A0,x\n1,Sales\n"
    job_id = upload(client, "departments", body)["job_id"]
    drain(small)
    rows = [
        {"id": 2, "department": '=HYPERLINK("http://evil.example","x")'},
        {"id": 3, "department": "-5"},
    ]
    client.post("/tables/departments/rows", json={"rows": rows})
    client.post("/tables/jobs/rows", json={"rows": [{"id": 1, "job": "@SUM(A1)"}]})
    hires = [
        {
            "id": i,
            "name": "+Ann",
            "datetime": "2021-01-01T00:00:00Z",
            "department_id": 2,
            "job_id": 1,
        }
        for i in range(1, 4)
    ]
    client.post("/tables/hired_employees/rows", json={"rows": hires})

    # When they come back as CSV
    rejected = client.get(f"/jobs/{job_id}/rejected-rows", headers={"accept": "text/csv"})
    report = client.get(
        "/reports/hires-by-quarter", params={"year": 2021}, headers={"accept": "text/csv"}
    )

    # Then every formula starts with a quote, and JSON answers are untouched
    [line] = list(csv.DictReader(io.StringIO(rejected.text)))
    assert line["raw"] == "'=cmd|' /C calc'!A0,x"
    [row] = list(csv.DictReader(io.StringIO(report.text)))
    assert row["department"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["job"] == "'@SUM(A1)"
    assert row["Q1"] == "3"
    as_json = client.get(f"/jobs/{job_id}/rejected-rows").json()["items"][0]["raw"]
    assert as_json == "=cmd|' /C calc'!A0,x"


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+Ann", "'+Ann"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-5", "-5"),
        ("+1.5e3", "+1.5e3"),
        ("-.5", "-.5"),
        ("Sales", "Sales"),
        (7, 7),
    ],
)
def test_a_cell_is_neutralised_only_when_a_spreadsheet_would_compute_it(
    cell: object, written: object
) -> None:
    assert neutralised(cell) == written
