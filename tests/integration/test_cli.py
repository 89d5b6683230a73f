"""The ``ingest`` command line against the real service: supervisor, API and one worker.

Each command runs as its own process (``python -m cli``, what the ``ingest`` script runs), so
exit codes, stdout and stderr are exactly what an operator sees.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_DATA
from tests.support.processes import REPO, Started, free_port, supervisor

CLI_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def ingest(url: str, *args: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["INGEST_URL"] = url
    env["COLUMNS"] = "200"  # tables wide enough that ids and counts stay on one line
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in run.stdout + run.stderr, run
    return run


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    with supervisor(tmp_path_factory.mktemp("cli"), workers=1) as started:
        yield started


@pytest.fixture(scope="module")
def url(service: Started) -> str:
    assert service.base_url is not None
    return service.base_url


@pytest.fixture(scope="module")
def loaded(url: str) -> Run:
    """The sample files, uploaded in one request and waited for."""
    return ingest(url, "upload-all", str(SAMPLE_DATA), "--wait")


def hired_job(url: str) -> dict[str, Any]:
    page = ingest(url, "jobs", "--table", "hired_employees", "--json").json()
    job: dict[str, Any] = page["items"][-1]  # the oldest: the sample upload
    return job


def test_upload_all_waits_for_every_job_and_sums_them_up(loaded: Run) -> None:
    assert loaded.code == 0, loaded
    lines = {line.split(":")[0]: line for line in loaded.stdout.splitlines()}
    assert "12 inserted, 0 rejected" in lines["departments"]
    assert "183 inserted, 0 rejected" in lines["jobs"]
    assert "1929 inserted, 70 rejected" in lines["hired_employees"]
    assert "succeeded" in lines["hired_employees"]


def test_jobs_as_json_is_the_api_page(url: str, loaded: Run) -> None:
    page = ingest(url, "jobs", "--json").json()
    by_table = {j["table"]: j for j in page["items"]}
    assert page["total"] >= 3
    assert by_table["hired_employees"]["status"] == "succeeded"
    assert (
        by_table["hired_employees"]["rows_inserted"],
        by_table["hired_employees"]["rows_rejected"],
    ) == (1929, 70)
    # The global options work before the command too.
    assert ingest(url, "--json", "jobs", "--status", "succeeded").json()["total"] >= 3


def test_jobs_and_one_job_as_tables(url: str, loaded: Run) -> None:
    job = hired_job(url)
    listed = ingest(url, "jobs")
    assert listed.code == 0 and job["job_id"] in listed.stdout
    shown = ingest(url, "job", job["job_id"])
    assert shown.code == 0 and "1,929" in shown.stdout and "hired_employees" in shown.stdout


def test_rejected_rows_download_as_csv(url: str, loaded: Run, tmp_path: Path) -> None:
    job = hired_job(url)
    target = tmp_path / "rejected.csv"

    run = ingest(url, "rejected", job["job_id"], "--csv", str(target))

    assert run.code == 0, run
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 71
    assert lines[0] == "line,raw,columns,rules,messages"
    page = ingest(url, "rejected", job["job_id"], "--limit", "5", "--json").json()
    assert (page["total"], len(page["items"])) == (70, 5)


def test_reports_as_json_csv_and_table(url: str, loaded: Run) -> None:
    report = ingest(url, "report", "hires-by-quarter", "--year", "2021", "--json").json()
    assert report["year"] == 2021
    assert report["rows"] and set(report["rows"][0]) == {
        "department",
        "job",
        "Q1",
        "Q2",
        "Q3",
        "Q4",
    }
    hires = sum(r[q] for r in report["rows"] for q in ("Q1", "Q2", "Q3", "Q4"))
    assert 0 < hires <= 1929

    as_csv = ingest(url, "report", "departments-above-mean", "--year", "2021", "--csv")
    assert as_csv.code == 0 and as_csv.stdout.splitlines()[0] == "id,department,hired"
    table = ingest(url, "report", "departments-above-mean", "--year", "2021")
    assert table.code == 0 and as_csv.stdout.splitlines()[1].split(",")[1] in table.stdout


def test_one_file_upload_with_wait_and_json(url: str, loaded: Run) -> None:
    run = ingest(
        url,
        "--json",
        "upload",
        str(SAMPLE_DATA / "departments.csv"),
        "--table",
        "departments",
        "--force",
        "--on-conflict",
        "update",
        "--wait",
    )
    assert run.code == 0, run
    job = run.json()
    assert (job["status"], job["on_conflict"], job["rows_read"]) == ("succeeded", "update", 12)


def test_an_unknown_job_is_one_line_and_exit_code_2(url: str) -> None:
    run = ingest(url, "job", "no-such-job")
    assert run.code == 2
    assert run.stderr.strip().splitlines() == ["error: Not found: no job with id 'no-such-job'"]


def test_an_unreachable_service_is_one_line_and_exit_code_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    run = ingest(url, "jobs")

    assert run.code == 3
    assert run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        f"error: cannot reach the service at {url}: is it running? (make run)"
    ]


def test_a_failed_upload_exits_1_and_its_dead_letter_can_be_purged(
    url: str, loaded: Run, tmp_path: Path
) -> None:
    junk = bytearray(random.Random(7).randbytes(4096))
    junk[::16] = bytes(len(junk[::16]))  # NULs: not text at all
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(junk))

    run = ingest(url, "upload", str(path), "--table", "jobs", "--wait")

    assert run.code == 1, run
    assert "jobs: failed" in run.stdout and "NotText" in run.stdout
    job_id = run.stdout.split("(job ")[1].split(")")[0]
    letters = ingest(url, "dead-letters", "list", "--json").json()["items"]
    [letter] = [x for x in letters if x["job_id"] == job_id]
    assert letter["reason"] == "NotText"
    shown = ingest(url, "dead-letters", "show", letter["id"])
    assert shown.code == 0 and job_id in shown.stdout
    assert letter["id"] in ingest(url, "dead-letters", "list").stdout

    purged = ingest(url, "dead-letters", "purge", letter["id"])

    assert purged.code == 0 and f"purged dead letter {letter['id']}" in purged.stdout
    left = ingest(url, "dead-letters", "list", "--json").json()["items"]
    assert letter["id"] not in {x["id"] for x in left}
    again = ingest(url, "dead-letters", "purge", letter["id"])
    assert again.code == 2 and again.stderr.startswith("error: Not found:")


def test_back_up_list_and_restore_a_table(url: str, loaded: Run) -> None:
    taken = ingest(url, "--json", "backup", "jobs")
    assert taken.code == 0, taken
    backup = taken.json()
    assert (backup["table"], backup["row_count"]) == ("jobs", 183)
    listed = ingest(url, "backups", "--table", "jobs")
    assert listed.code == 0 and backup["backup_id"] in listed.stdout

    restored = ingest(url, "restore", backup["backup_id"])

    assert restored.code == 0, restored
    assert "restored jobs: 183 rows" in restored.stdout
    missing = ingest(url, "restore", "0" * 32)
    assert missing.code == 2 and len(missing.stderr.strip().splitlines()) == 1
