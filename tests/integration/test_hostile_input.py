"""Hostile and broken input, on SQLite and PostgreSQL: the corpus under ``tests/corpus``.

Every case of ``tests/corpus/expected.json`` is a file or a request with its outcome written down
by hand: uploads go through the real API and a real worker, batches and other requests through
the API. The good rows of each file must be in the table, the bad ones rejected with their line
and rules, and no response anywhere may be a 5xx.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.bootstrap import Services
from common.schema import batch_rejections, batches
from common.tables import LOAD_ORDER
from tests.conftest import SAMPLE_DATA
from tests.support.flow import api_client, drain, job, service_set, table_ids, table_rows

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
PROBLEM_JSON = "application/problem+json"
BOM = b"\xef\xbb\xbf"
TEN_MB = 10 * 1024 * 1024


def cases(section: str) -> list[Any]:
    return [pytest.param(case, id=case["case"]) for case in MANIFEST[section]]


# ---- the service, watched for server errors ----


def _no_server_error(response: httpx.Response) -> None:
    if response.status_code >= 500:
        response.read()
        raise AssertionError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text}"
        )


@contextmanager
def watched_client(services: Services) -> Iterator[TestClient]:
    """The real app; any 5xx answer fails the test where it happens."""
    with api_client(services) as client:
        client.event_hooks = {"request": [], "response": [_no_server_error]}
        yield client


def load_parents(client: TestClient) -> None:
    """The sample departments (1..12) and jobs (1..183), through the batch API."""
    for table, column in (("departments", "department"), ("jobs", "job")):
        with (SAMPLE_DATA / f"{table}.csv").open(newline="", encoding="utf-8") as f:
            rows = [{"id": int(ident), column: name} for ident, name in csv.reader(f)]
        response = client.post(f"/tables/{table}/rows", json={"rows": rows})
        assert response.status_code == 200, response.text
        assert response.json()["inserted"] == len(rows)


def prepare(client: TestClient, case: dict[str, Any]) -> None:
    if case.get("parents", True):
        load_parents(client)
    if case.get("existing"):
        response = client.post(f"/tables/{case['table']}/rows", json={"rows": case["existing"]})
        assert response.status_code == 200, response.text
        assert response.json()["inserted"] == len(case["existing"])


def all_ids(services: Services) -> dict[str, set[int]]:
    return {table: set(table_ids(services, table)) for table in LOAD_ORDER}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def assert_stored(services: Services, table: str, expected: dict[str, dict[str, Any]]) -> None:
    rows = {int(r["id"]): r for r in table_rows(services, table)}
    for ident, columns in expected.items():
        row = rows[int(ident)]
        assert {c: _plain(row[c]) for c in columns} == columns, f"row {ident}"


def assert_only_new_ids(
    services: Services, table: str, before: dict[str, set[int]], new_ids: list[int]
) -> None:
    after = all_ids(services)
    assert sorted(after[table] - before[table]) == new_ids
    assert before[table] <= after[table], "no row may disappear"
    for other in LOAD_ORDER:
        if other != table:
            assert after[other] == before[other], f"{other} must be untouched"


def rules_of(errors: list[dict[str, str]]) -> list[str]:
    return [f"{e['column']}:{e['rule']}" for e in errors]


# ---- uploads ----


def generated_upload(name: str, tmp_path: Path) -> Path:
    """Files too big to commit, written at test time."""
    assert name == "ten_megabyte_field", name
    path = tmp_path / f"{name}.csv"
    with path.open("wb") as f:
        f.write(b"1,Ann,2021-07-27T16:02:08Z,1,1\n2,")
        f.write(b"a" * TEN_MB)
        f.write(b",2021-07-27T16:02:08Z,1,1\n3,Bob,2021-07-27T16:02:08Z,1,1\n")
    return path


def physical_line(data: bytes, number: int) -> str:
    """Line ``number`` of a file as the service shows it: without its line end (and the BOM
    of line 1), bytes that are not UTF-8 as ``\\xNN``, NUL as ``\\x00``."""
    line = data.split(b"\n")[number - 1].rstrip(b"\r")
    if number == 1 and line.startswith(BOM):
        line = line[len(BOM) :]
    return line.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def every_rejection(client: TestClient, job_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/jobs/{job_id}/rejected-rows", params={"limit": 1000})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == len(page["items"])
    items: list[dict[str, Any]] = page["items"]
    return items


@pytest.mark.parametrize("case", cases("uploads"))
def test_an_upload_is_ingested_as_documented(
    case: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    expect = case["expect"]
    table = case["table"]
    if "generate" in case:
        path = generated_upload(case["generate"], tmp_path)
    else:
        path = CORPUS / case["file"]
    with service_set(tmp_path, database_url) as services, watched_client(services) as client:
        # Given the parents (and existing rows) the case needs
        prepare(client, case)
        before = all_ids(services)

        # When the file is uploaded and a worker ingests it
        with path.open("rb") as body:
            response = client.post(
                f"/uploads/{table}",
                content=body,
                headers={"content-type": "text/csv"},
                params=case.get("params", {}),
            )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        drain(services)

        # Then the job ends as documented, with exact counts
        done = job(client, job_id)
        assert done["status"] == expect["status"], done["error"]
        dead = client.get("/dead-letters").json()["total"]
        if expect["status"] == "failed":
            assert expect["error"] in done["error"]
            assert dead == 1
        else:
            assert done["error"] is None
            assert dead == 0
            assert done["bytes_done"] == done["size_bytes"] == path.stat().st_size
            assert done["rows_inserted"] == expect["rows_inserted"]
            assert done["rows_updated"] == expect.get("rows_updated", 0)
        assert done["rows_read"] == expect["rows_read"]
        assert done["rows_rejected"] == len(expect["rejected"])

        # And every rejected line is kept with its number, every broken rule and its text
        rejected = every_rejection(client, job_id)
        assert [(r["line"], rules_of(r["errors"])) for r in rejected] == [
            (r["line"], r["rules"]) for r in expect["rejected"]
        ]
        if "generate" not in case:
            data = path.read_bytes()
            for r in rejected:
                assert r["raw"] == physical_line(data, r["line"]), f"line {r['line']}"

        # And exactly the good rows are in the table, with their values
        assert_only_new_ids(services, table, before, expect["new_ids"])
        assert_stored(services, table, expect.get("stored", {}))


# ---- batches ----


def batch_body(case: dict[str, Any]) -> bytes:
    if "generate" in case:
        assert case["generate"] == "batch_of_1001_rows", case["generate"]
        rows = [{"id": i, "department": f"Department {i}"} for i in range(101, 1102)]
        return json.dumps({"rows": rows}).encode()
    return (CORPUS / case["file"]).read_bytes()


def stored_batch_indexes(services: Services, batch_id: str) -> list[int]:
    with services.db.read() as conn:
        return [
            int(index)
            for index in conn.execute(
                select(batch_rejections.c.idx)
                .join(batches, batches.c.seq == batch_rejections.c.batch_seq)
                .where(batches.c.batch_id == batch_id)
                .order_by(batch_rejections.c.idx)
            ).scalars()
        ]


@pytest.mark.parametrize("case", cases("batches"))
def test_a_batch_is_answered_as_documented(
    case: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    expect = case["expect"]
    table = case["table"]
    with service_set(tmp_path, database_url) as services, watched_client(services) as client:
        prepare(client, case)
        before = all_ids(services)

        response = client.post(
            f"/tables/{table}/rows",
            content=batch_body(case),
            headers={"content-type": "application/json"},
        )

        assert response.status_code == expect["http"], response.text
        if expect["http"] != 200:
            # A refused request is a problem document and changes nothing
            assert response.headers["content-type"].startswith(PROBLEM_JSON)
            assert expect["detail"] in response.json()["detail"]
            assert_only_new_ids(services, table, before, [])
            return
        answer = response.json()
        assert answer["inserted"] == expect["inserted"]
        assert answer["updated"] == 0
        assert [(r["index"], rules_of(r["errors"])) for r in answer["rejected"]] == [
            (r["index"], r["rules"]) for r in expect["rejected"]
        ]
        assert stored_batch_indexes(services, answer["batch_id"]) == [
            r["index"] for r in expect["rejected"]
        ]
        assert_only_new_ids(services, table, before, expect["new_ids"])
        assert_stored(services, table, expect.get("stored", {}))


# ---- requests refused as a whole ----


def _repeated(spec: dict[str, Any]) -> bytes:
    middle = spec["repeat"].encode() * spec["times"]
    return spec.get("prefix", "").encode() + middle + spec.get("suffix", "").encode()


def _chunks(data: bytes, size: int = 100) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _part(part: dict[str, Any]) -> tuple[str, tuple[str | None, bytes, str]]:
    if "file" in part:
        data = (CORPUS / part["file"]).read_bytes()
    elif "repeat" in part:
        data = _repeated(part)
    else:
        data = part["text"].encode()
    return part["field"], (part.get("filename"), data, "text/csv")


def request_arguments(case: dict[str, Any]) -> dict[str, Any]:
    """httpx arguments for the case's body and content type."""
    body = case.get("body")
    headers = {"content-type": case["content_type"]} if "content_type" in case else {}
    if body is None:
        return {"headers": headers}
    if "multipart" in body:
        return {"files": [_part(p) for p in body["multipart"]], "headers": headers}
    if "json" in body:
        headers.setdefault("content-type", "application/json")
        return {"content": json.dumps(body["json"]).encode(), "headers": headers}
    if "file" in body:
        data = (CORPUS / body["file"]).read_bytes()
    elif "repeat" in body:
        data = _repeated(body)
    else:
        data = body["text"].encode()
    content: bytes | Iterator[bytes] = _chunks(data) if body.get("streamed") else data
    return {"content": content, "headers": headers}


@pytest.mark.parametrize("case", cases("requests"))
def test_a_bad_request_is_refused_as_documented(
    case: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    expect = case["expect"]
    settings = case.get("settings", {})
    with (
        service_set(tmp_path, database_url, **settings) as services,
        watched_client(services) as client,
    ):
        response = client.request(
            case["method"], case["path"], params=case.get("params"), **request_arguments(case)
        )

        # Then the answer is the documented 4xx, as a problem document a person can act on
        assert response.status_code == expect["http"], response.text
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        problem = response.json()
        assert problem["status"] == expect["http"]
        assert problem["detail"]
        if "title" in expect:
            assert problem["title"] == expect["title"]
        # And nothing was stored: no job, no blob, no row
        assert client.get("/jobs").json()["total"] == 0
        container = services.settings.blob_container_name_historic
        assert list(services.blob.list(container)) == []
        assert all_ids(services) == {table: set() for table in LOAD_ORDER}
