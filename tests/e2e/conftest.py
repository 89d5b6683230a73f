"""Shared steps of the end-to-end stories: sample files, uploads and waiting on jobs over HTTP."""

from __future__ import annotations

import csv
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import Started

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
JOB_TIMEOUT_SECONDS = 60.0
FINISHED = ("succeeded", "failed")


@dataclass(frozen=True)
class FirstRejection:
    """Where the first row with a blank field is in a CSV file, and which fields are blank."""

    line: int
    blank_columns: list[str]


def first_blank_field(path: Path, columns: list[str]) -> FirstRejection:
    with path.open(newline="", encoding="utf-8") as f:
        for line, fields in enumerate(csv.reader(f), start=1):
            blank = [
                name for name, value in zip(columns, fields, strict=False) if not value.strip()
            ]
            if blank:
                return FirstRejection(line, blank)
    raise AssertionError(f"{path} has no row with a blank field")


def binary_bytes(size: int = 4096) -> bytes:
    """Random bytes, every other one NUL: plainly not a text file."""
    noise = random.Random(20210101).randbytes(size)
    return bytes(b if i % 2 else 0 for i, b in enumerate(noise))


def upload_samples(client: httpx.Client) -> httpx.Response:
    """POST /uploads with the three sample files, children before parents in the request."""
    names = ["hired_employees", "jobs", "departments"]
    handles = [(SAMPLE_DATA / f"{n}.csv").open("rb") for n in names]
    try:
        files = [(n, (f"{n}.csv", h, "text/csv")) for n, h in zip(names, handles, strict=True)]
        return client.post("/uploads", files=files)
    finally:
        for h in handles:
            h.close()


def wait_for_jobs(
    service: Started,
    client: httpx.Client,
    job_ids: list[str],
    timeout: float = JOB_TIMEOUT_SECONDS,
) -> dict[str, dict[str, Any]]:
    """Poll GET /jobs/{id} until every job finished; its last state by id."""
    deadline = time.monotonic() + timeout
    latest: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        for job_id in job_ids:
            if latest.get(job_id, {}).get("status") in FINISHED:
                continue
            answer = client.get(f"/jobs/{job_id}")
            assert answer.status_code == 200, answer.text
            latest[job_id] = answer.json()
        if all(latest[j]["status"] in FINISHED for j in job_ids):
            return latest
        time.sleep(0.2)
    pytest.fail(
        f"jobs not finished in {timeout:.0f} s: "
        f"{ {j: latest.get(j, {}).get('status') for j in job_ids} }\n{service.stderr_tail()}"
    )


def wait_for_dead_letter(
    service: Started, client: httpx.Client, job_id: str, timeout: float = JOB_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Poll GET /dead-letters until one for ``job_id`` is listed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get("/dead-letters", params={"limit": 1000})
        assert answer.status_code == 200, answer.text
        for letter in answer.json()["items"]:
            if letter["job_id"] == job_id:
                return dict(letter)
        time.sleep(0.2)
    pytest.fail(f"no dead letter for job {job_id} in {timeout:.0f} s\n{service.stderr_tail()}")
