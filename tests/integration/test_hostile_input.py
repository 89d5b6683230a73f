"""Hostile and broken input, on SQLite and PostgreSQL: the corpus under ``tests/corpus``.

Each file there has a spec beside it that gives every line (or batch row) the outcome the
README's data rules give it: loaded, updated, or rejected by named rules. Uploads go through the
real API and a worker, batches and other requests through the API. The counts a job or an answer
shows must follow from those lines, every line of a file must be accounted for, and no response
anywhere may be a 5xx.
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
from common.model.catalog import load_order
from common.sql.schema import batch_rejections, batches
from tests.conftest import SAMPLE_DATA
from tests.support.corpus import (
    CORPUS,
    Case,
    batch_rows,
    cases,
    data_files,
    physical_lines,
    requests,
)
from tests.support.flow import api_client, drain, job, service_set, table_ids, table_rows

PROBLEM_JSON = "application/problem+json"
BOM = b"\xef\xbb\xbf"
TEN_MB = 10 * 1024 * 1024


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


def prepare(client: TestClient, case: Case) -> None:
    if case.parents:
        load_parents(client)
    if case.existing:
        response = client.post(f"/tables/{case.table}/rows", json={"rows": case.existing})
        assert response.status_code == 200, response.text
        assert response.json()["inserted"] == len(case.existing)
    updated = set(case.ids("update"))
    assert updated <= {row["id"] for row in case.existing}, "only existing ids can be updated"


def all_ids(services: Services) -> dict[str, set[int]]:
    return {table: set(table_ids(services, table)) for table in load_order()}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def assert_stored(services: Services, case: Case) -> None:
    rows = {int(r["id"]): r for r in table_rows(services, case.table)}
    for ident, columns in case.stored.items():
        row = rows[ident]
        assert {c: _plain(row[c]) for c in columns} == columns, f"row {ident}"


def assert_only_new_ids(
    services: Services, table: str, before: dict[str, set[int]], new_ids: list[int]
) -> None:
    after = all_ids(services)
    assert sorted(after[table] - before[table]) == new_ids
    assert before[table] <= after[table], "no row may disappear"
    for other in load_order():
        if other != table:
            assert after[other] == before[other], f"{other} must be untouched"


def rules_of(errors: list[dict[str, str]]) -> list[str]:
    return [f"{e['column']}:{e['rule']}" for e in errors]


def test_every_file_of_the_corpus_has_a_spec() -> None:
    specs = {p.with_suffix("") for p in CORPUS.glob("*/*/*.yaml")}
    files = {p.with_suffix("") for s in ("uploads", "batches") for p in data_files(s)}
    assert files - specs == set(), "files without a spec beside them"


# ---- uploads ----


def upload_data(case: Case, tmp_path: Path) -> Path:
    """The case's file, or for a file too big to commit, one written at test time."""
    if case.data_file is not None:
        return case.data_file
    assert case.generate == "ten_megabyte_field", case.generate
    path = tmp_path / f"{case.generate}.csv"
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


def assert_failed_whole(client: TestClient, done: dict[str, Any], case: Case) -> None:
    """A file that is not text: the job failed with the reason, its message dead-lettered."""
    assert done["status"] == "failed", done
    reason, _, why = done["error"].partition(": ")
    assert (reason, bool(why)) == (case.fails, True), done["error"]
    letters = client.get("/dead-letters").json()["items"]
    assert [(d["job_id"], d["reason"]) for d in letters] == [(done["job_id"], case.fails)]
    assert (done["rows_read"], done["rows_inserted"], done["rows_rejected"]) == (0, 0, 0)


def assert_counts(done: dict[str, Any], case: Case, lines: int) -> None:
    """Every line read once, and each one inserted, updated or rejected."""
    inserted, updated = len(case.ids("load")), len(case.ids("update"))
    assert done["rows_read"] == lines
    assert done["rows_rejected"] == len(case.rejected())
    assert (done["rows_inserted"], done["rows_updated"]) == (inserted, updated)


@pytest.mark.parametrize("case", cases("uploads"))
def test_an_upload_is_ingested_as_documented(case: Case, database_url: str, tmp_path: Path) -> None:
    path = upload_data(case, tmp_path)
    data = path.read_bytes() if case.data_file else b""
    lines = physical_lines(path.read_bytes())
    if not case.fails:
        assert sorted(case.outcomes) == list(range(1, lines + 1)), f"{case.spec}: every line"
    with service_set(tmp_path, database_url) as services, watched_client(services) as client:
        # Given the parents (and existing rows) the case needs
        prepare(client, case)
        before = all_ids(services)

        # When the file is uploaded and a worker ingests it
        with path.open("rb") as body:
            response = client.post(
                f"/uploads/{case.table}",
                content=body,
                headers={"content-type": "text/csv"},
                params=case.params,
            )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        drain(services)
        done = job(client, job_id)

        if case.fails:
            # Then a file that is not text fails as a whole, and nothing of it is stored
            assert_failed_whole(client, done, case)
            assert every_rejection(client, job_id) == []
            assert_only_new_ids(services, case.table, before, [])
            return

        # Then the job succeeded, having read the whole file
        assert (done["status"], done["error"]) == ("succeeded", None)
        assert client.get("/dead-letters").json()["total"] == 0
        assert done["bytes_done"] == done["size_bytes"] == path.stat().st_size

        # And every rejected line is kept with its number, every broken rule and its text
        rejected = every_rejection(client, job_id)
        assert [(r["line"], rules_of(r["errors"])) for r in rejected] == case.rejected()
        for r in rejected if data else []:
            assert r["raw"] == physical_line(data, r["line"]), f"line {r['line']}"

        # And exactly the good rows are in the table, with their values
        assert_only_new_ids(services, case.table, before, case.ids("load"))
        assert_stored(services, case)
        # And the job's counts are those of its lines
        assert_counts(done, case, lines)


# ---- batches ----


def batch_body(case: Case) -> bytes:
    if case.data_file is not None:
        return case.data_file.read_bytes()
    assert case.generate == "batch_of_1001_rows", case.generate
    rows = [{"id": i, "department": f"Department {i}"} for i in range(101, 1102)]
    return json.dumps({"rows": rows}).encode()


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


def assert_points_at(problem: dict[str, Any], names: list[str]) -> None:
    """The problem's detail, or the location of an invalid field, names what to change."""
    where = " ".join([problem["detail"], *(e["location"] for e in problem.get("errors", []))])
    for name in names:
        assert name.lower() in where.lower(), (name, problem)


@pytest.mark.parametrize("case", cases("batches"))
def test_a_batch_is_answered_as_documented(case: Case, database_url: str, tmp_path: Path) -> None:
    body = batch_body(case)
    if case.refused is None:
        assert sorted(case.outcomes) == list(range(batch_rows(body))), f"{case.spec}: every row"
    with service_set(tmp_path, database_url) as services, watched_client(services) as client:
        prepare(client, case)
        before = all_ids(services)

        response = client.post(
            f"/tables/{case.table}/rows",
            content=body,
            headers={"content-type": "application/json"},
            params=case.params,
        )

        if case.refused is not None:
            # A refused request is a problem document that says what to fix, and changes nothing
            assert response.status_code == case.refused, response.text
            assert response.headers["content-type"].startswith(PROBLEM_JSON)
            assert_points_at(response.json(), case.points_at)
            assert_only_new_ids(services, case.table, before, [])
            return
        assert response.status_code == 200, response.text
        answer = response.json()
        assert (answer["inserted"], answer["updated"]) == (
            len(case.ids("load")),
            len(case.ids("update")),
        )
        assert [(r["index"], rules_of(r["errors"])) for r in answer["rejected"]] == case.rejected()
        assert stored_batch_indexes(services, answer["batch_id"]) == [
            index for index, _ in case.rejected()
        ]
        assert_only_new_ids(services, case.table, before, case.ids("load"))
        assert_stored(services, case)


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


@pytest.mark.parametrize("case", requests())
def test_a_bad_request_is_refused_as_documented(
    case: dict[str, Any], database_url: str, tmp_path: Path
) -> None:
    settings = case.get("settings", {})
    with (
        service_set(tmp_path, database_url, **settings) as services,
        watched_client(services) as client,
    ):
        response = client.request(
            case["method"], case["path"], params=case.get("params"), **request_arguments(case)
        )

        # Then the answer is the documented 4xx, as a problem document a person can act on
        assert response.status_code == case["answer"], response.text
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        problem = response.json()
        assert problem["status"] == case["answer"]
        assert problem["title"] and problem["detail"]
        assert_points_at(problem, case.get("points_at", []))
        # And nothing was stored: no job, no blob, no row
        assert client.get("/jobs").json()["total"] == 0
        container = services.settings.blob_container_name_historic
        assert list(services.blob.list(container)) == []
        assert all_ids(services) == {table: set() for table in load_order()}
