"""A table replaced by an upload (``write=replace``) changes at once for every reader: the
reports read the old rows or the new ones, never the table emptied or half filled."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from common.bootstrap import Services
from common.stores.reports import departments_above_mean, hires_by_quarter
from tests.support.flow import api_client, drain, service_set


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    # Small parts: the replacing file is staged in several parts before it is published.
    with service_set(tmp_path, database_url, block_bytes=1024, part_bytes=1024) as built:
        yield built


def hires(first_id: int, count: int, department: int, job: int) -> bytes:
    lines = (
        f"{i},Person {i},2021-0{1 + i % 9}-15T10:00:00Z,{department},{job}"
        for i in range(first_id, first_id + count)
    )
    return ("\n".join(lines) + "\n").encode()


def upload(client: TestClient, services: Services, table: str, data: bytes, **params: Any) -> None:
    answer = client.post(
        f"/uploads/{table}", content=data, headers={"content-type": "text/csv"}, params=params
    )
    assert answer.status_code == 202, answer.text
    drain(services)
    job = client.get(f"/jobs/{answer.json()['job_id']}").json()
    assert job["status"] == "succeeded", job


def reports(services: Services) -> tuple[object, ...]:
    return (hires_by_quarter(services.db, 2021), departments_above_mean(services.db, 2021))


def test_the_reports_see_the_old_rows_or_the_new_never_a_mix(
    tmp_path: Path, services: Services
) -> None:
    # Given hires of department 1 in the table, and the reports over them
    with api_client(services) as client:
        upload(client, services, "departments", b"1,Sales\n2,Support\n")
        upload(client, services, "jobs", b"1,Clerk\n2,Agent\n")
        upload(client, services, "hired_employees", hires(1, 60, department=1, job=1))
        old = reports(services)

        # When a file of department 2's hires replaces them, while a reader on another
        # connection runs the reports each time the replacing transaction writes the table
        seen: list[tuple[object, ...]] = []
        errors: list[BaseException] = []

        def read_now(*args: Any) -> None:
            # The replacing transaction's writes to the table (a delete may be inside a WITH).
            statement = " ".join(str(args[2]).upper().split())
            if not any(w in statement for w in ("DELETE FROM HIRED_", "INSERT INTO HIRED_")):
                return

            # From another thread, so that it has its own connection and transaction.
            def run() -> None:
                try:
                    seen.append(reports(services))
                except BaseException as exc:  # reported by the test below
                    errors.append(exc)

            reader = threading.Thread(target=run)
            reader.start()
            reader.join()

        event.listen(services.db.engine, "after_cursor_execute", read_now)
        try:
            upload(
                client,
                services,
                "hired_employees",
                hires(1000, 40, department=2, job=2),
                write="replace",
            )
        finally:
            event.remove(services.db.engine, "after_cursor_execute", read_now)
        new = reports(services)

    # Then every reading was the old answer or the new one
    assert not errors, errors
    assert old != new
    assert len(seen) >= 2  # the DELETE and the INSERT of the replacing transaction
    assert all(reading in (old, new) for reading in seen), [r for r in seen if r not in (old, new)]
    # and the reader saw the old answer after the table had been emptied in the transaction
    assert old in seen
