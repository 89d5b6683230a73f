"""``ingest upload`` and ``ingest upload-all`` with load options, against the real service
(supervisor, API and one worker): the options reach the API, the jobs show them, and values
the service would refuse are refused with one plain line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA
from tests.support.cli import ingest, line_with, on_screen
from tests.support.processes import supervisor

WIDTHS = (80, 60)
DEPARTMENTS = SAMPLE_DATA / "departments.csv"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with supervisor(tmp_path_factory.mktemp("cli-options"), workers=1) as started:
        assert started.base_url is not None
        yield started.base_url


def upload_departments(url: str, tmp_path: Path, *options: str) -> tuple[int, dict[str, object]]:
    """A header line, then the sample departments, uploaded with ``options`` and waited for."""
    path = tmp_path / "departments.csv"
    path.write_text("id,department\n" + DEPARTMENTS.read_text(encoding="utf-8"), encoding="utf-8")
    args = ["--json", "upload", str(path), "--table", "departments", "--force", "--wait"]
    run = ingest(url, *args, *options)
    return run.code, run.json()


def test_a_dry_run_is_sent_with_its_options(url: str, tmp_path: Path) -> None:
    # Given a file whose first line is a header,
    # when it is uploaded as a dry run that skips the header and allows one bad row,
    code, job = upload_departments(
        url, tmp_path, "--dry-run", "--skip-leading-rows", "1", "--max-bad-records", "1"
    )

    # then the job ran with exactly those options, checked every row and wrote nothing,
    assert code == 0, job
    assert job["options"] == {"dry_run": True, "skip_leading_rows": 1, "max_bad_records": 1}
    assert (job["status"], job["rows_read"], job["rows_inserted"]) == ("succeeded", 12, 0)
    # and the list of jobs marks it as a dry run too.
    listed = ingest(url, "--json", "jobs", "--table", "departments").json()["items"]
    assert [j["dry_run"] for j in listed if j["job_id"] == job["job_id"]] == [True]


def test_upload_all_with_a_threshold_fails_every_file_together(url: str) -> None:
    # Given the sample files, whose hired_employees has 70 bad rows,
    sample = str(SAMPLE_DATA)

    # when they are loaded all or nothing with no bad row allowed,
    run = ingest(url, "--json", "upload-all", sample, "--atomic", "--max-bad-records", "0", "-w")

    # then every job ran with those options and failed, none writing anything.
    assert run.code == 1, run
    jobs = run.json()
    assert [j["table"] for j in jobs] == ["departments", "jobs", "hired_employees"]
    assert all(j["options"] == {"atomic": True, "max_bad_records": 0} for j in jobs), jobs
    assert {j["status"] for j in jobs} == {"failed"}
    assert any(j["error"].startswith("too_many_bad_records") for j in jobs), jobs
    assert {j["rows_inserted"] for j in jobs} == {0}


def test_a_dry_run_of_a_folder_says_so_when_it_ends(url: str) -> None:
    run = ingest(url, "upload-all", str(SAMPLE_DATA), "--dry-run", "--wait")

    assert run.code == 0, run
    for table in ("departments", "jobs", "hired_employees"):
        assert f"{table}: succeeded (dry run), " in run.stdout
    assert run.stdout.count("nothing written") == 3


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--max-bad-percent", "150"], "--max-bad-percent"),
        (["--max-bad-records", "-1"], "--max-bad-records"),
        (["--skip-leading-rows", "1001"], "--skip-leading-rows"),
        (["--write", "sometimes"], "--write"),
        (["--write", "replace", "--on-conflict", "update"], "--on-conflict update"),
    ],
)
def test_values_the_service_would_refuse_are_refused_first(
    url: str, args: list[str], named: str
) -> None:
    run = ingest(url, "upload", str(DEPARTMENTS), "--table", "departments", *args)

    assert run.code == 2, run
    assert run.stdout == ""
    assert named in run.stderr


def test_a_value_the_service_refuses_is_shown_in_plain_words(url: str) -> None:
    too_many = str(2**63)
    run = ingest(url, "upload", str(DEPARTMENTS), "-t", "jobs", "--max-bad-records", too_many)

    assert run.code == 2, run
    assert run.stderr.strip().splitlines() == [
        f"error: Invalid request: max_bad_records must be at most {2**62}, not {too_many}"
    ]


@pytest.mark.parametrize("columns", WIDTHS)
def test_jobs_show_their_options_and_dry_runs_within_the_terminal(
    url: str, tmp_path: Path, columns: int
) -> None:
    # Given a dry run and an atomic load with a threshold,
    _, dry = upload_departments(url, tmp_path, "--dry-run", "--skip-leading-rows", "1")
    # (ids already loaded by another test are updated, so it succeeds whatever ran before)
    _, atomic = upload_departments(
        url,
        tmp_path,
        "--atomic",
        "--max-bad-percent",
        "2.5",
        "--skip-leading-rows",
        "1",
        "--on-conflict",
        "update",
    )

    # when one job is shown, its status says it is a dry run and its options are one line;
    code, lines = on_screen(url, columns, "job", dry["job_id"][:8])
    assert code == 0, lines
    line_with(lines, "status", "succeeded (dry run)")
    line_with(lines, "options", "skip_leading_rows=1")
    code, lines = on_screen(url, columns, "job", atomic["job_id"][:8])
    assert code == 0, lines
    assert not [line for line in lines if "dry run" in line]
    assert "atomic, max_bad_percent=2.5" in " ".join(" ".join(lines).split())

    # and in the list, each job's line keeps its id, table and status whole, a dry run is
    # marked under its status, and the options show where there is room for them.
    code, lines = on_screen(url, columns, "jobs", "--table", "departments")
    assert code == 0, lines
    for job in (dry, atomic):
        row = lines.index(line_with(lines, job["job_id"][:8], " departments ", "succeeded"))
        assert ("dry run" in lines[row + 1]) == (job is dry), lines
    shown = " ".join(lines)
    assert ("max_bad_percent=2.5" in shown) == (columns >= 80), lines
    # A folder's dry run ends with one line per file, whole words only.
    code, lines = on_screen(url, columns, "upload-all", str(SAMPLE_DATA), "--dry-run", "-w")
    assert code == 0, lines
    final = " ".join(" ".join(lines).split())
    for table in ("departments", "jobs", "hired_employees"):
        assert f"{table}: succeeded (dry run), " in final
    for args in (["upload", "--help"], ["upload-all", "--help"]):
        code, lines = on_screen(url, columns, *args)
        assert code == 0 and "--allow-quoted-newlines" in " ".join(lines), lines
