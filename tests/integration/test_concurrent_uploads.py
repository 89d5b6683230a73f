"""Identical uploads at the same instant make exactly one job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.bootstrap import Services
from tests.support.flow import drain, service_set
from tests.support.serving import at_once, http, serving

BODY = "".join(f"{i},Department {i}\n" for i in range(1, 2001)).encode()


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[Services]:
    with service_set(tmp_path, database_url) as built:
        yield built


def test_ten_identical_uploads_at_once_make_one_job_and_keep_one_file(services: Services) -> None:
    with serving(services) as url, http(url) as client:
        answers = at_once(
            [
                lambda: client.post(
                    "/uploads/departments", content=BODY, headers={"content-type": "text/csv"}
                )
                for _ in range(10)
            ]
        )

    assert sorted(a.status_code for a in answers) == [200] * 9 + [202]
    assert len({a.json()["job_id"] for a in answers}) == 1
    assert services.jobs.page(100, 0)[1] == 1
    container = services.settings.blob_container_name_historic
    assert len(list(services.blob.list(container))) == 1
    drain(services)
    job = services.jobs.get(answers[0].json()["job_id"])
    assert (job.rows_inserted, job.rows_rejected) == (2000, 0)


def test_a_forced_upload_makes_a_job_of_its_own_even_when_racing(services: Services) -> None:
    with serving(services) as url, http(url) as client:
        answers = at_once(
            [
                lambda forced=forced: client.post(  # type: ignore[misc]
                    "/uploads/departments",
                    content=BODY,
                    headers={"content-type": "text/csv"},
                    params={"force": forced},
                )
                for forced in ("true", "false", "false", "false")
            ]
        )

    assert len({a.json()["job_id"] for a in answers}) == 2
