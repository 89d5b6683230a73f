"""The ``ingest`` command line against the real service: supervisor, API and one worker.

Each command runs as its own process (``python -m cli``, what the ``ingest`` script runs), so
exit codes, stdout and stderr are exactly what an operator sees: through pipes, or in a
pseudo-terminal 80 or 60 columns wide, rendered as a terminal shows it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_DATA
from tests.support.cli import Run, ingest, line_with, on_screen
from tests.support.jobs import record_jobs_in
from tests.support.processes import Started, api, free_port, supervisor

JOB_SECONDS = 60
WIDTHS = (80, 60)
READER_KEY = "reader-key-0123456789"
ADMIN_KEY = "admin-key-0123456789"


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


def failed_upload(url: str, tmp_path: Path) -> str:
    """Upload a file that is not text and wait for its job to fail; the job's id."""
    junk = bytearray(random.Random(7).randbytes(4096))
    junk[::16] = bytes(len(junk[::16]))  # NULs: not text at all
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(junk))
    run = ingest(url, "--json", "upload", str(path), "--table", "jobs", "--force", "--wait")
    assert run.code == 1, run
    job = run.json()
    assert job["status"] == "failed" and "NotText" in job["error"]
    return str(job["job_id"])


def letter_of(url: str, job_id: str) -> dict[str, Any]:
    letters = ingest(url, "dead-letters", "list", "--json").json()["items"]
    [letter] = [x for x in letters if x["job_id"] == job_id]
    return dict(letter)


# --- uploads and jobs ---------------------------------------------------------------------------


def test_upload_all_waits_for_every_job_and_sums_them_up(loaded: Run) -> None:
    assert loaded.code == 0, loaded
    lines = {line.split(":")[0]: line for line in loaded.stdout.splitlines()}
    assert "12 inserted, 0 rejected" in lines["departments"]
    assert "183 inserted, 0 rejected" in lines["jobs"]
    assert "1929 inserted, 70 rejected" in lines["hired_employees"]
    assert "succeeded" in lines["hired_employees"]
    # Not at a terminal: final lines only, no progress bars and no terminal codes.
    assert "\N{BOX DRAWINGS HEAVY HORIZONTAL}" not in loaded.stderr and "\x1b[" not in loaded.stderr


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


def test_a_job_is_named_by_its_id_or_any_unique_prefix(url: str, loaded: Run) -> None:
    job = hired_job(url)
    listed = ingest(url, "jobs")
    assert listed.code == 0 and job["job_id"][:8] in listed.stdout
    for given in (job["job_id"], job["job_id"][:8], job["job_id"][:6]):
        shown = ingest(url, "job", given)
        assert shown.code == 0, shown
        assert job["job_id"] in shown.stdout and "1,929" in shown.stdout
    rejected = ingest(url, "rejected", job["job_id"][:7], "--json")
    assert rejected.json()["total"] == 70


def test_an_ambiguous_prefix_lists_the_candidates(url: str, service: Started) -> None:
    # Given two jobs whose ids start alike (written into the service's database),
    ids = ["abcdef01-0000-4000-8000-00000000000a", "abcdef02-0000-4000-8000-00000000000b"]
    record_jobs_in(service.folder, ids, failed=True)

    # then their common start names neither, and says which it could be,
    run = ingest(url, "job", "abcdef0")
    assert run.code == 2
    [line] = run.stderr.strip().splitlines()
    assert ids[0] in line and ids[1] in line and "more characters" in line
    # one more character is enough, and fewer than six are refused.
    assert ingest(url, "--json", "job", "abcdef02").json()["job_id"] == ids[1]
    short = ingest(url, "job", "abcde")
    assert short.code == 2 and "at least 6 characters" in short.stderr


def test_a_queued_job_is_cancelled_then_deleted_by_its_short_id(url: str, service: Started) -> None:
    # Given a queued job (written into the service's database, so no worker takes it first)
    job_id = "cafe0123-0000-4000-8000-00000000000c"
    record_jobs_in(service.folder, [job_id], "jobs")

    # When it is deleted while queued, it is refused; cancelled, it ends at once
    refused = ingest(url, "delete", "cafe0123")
    assert refused.code == 2 and "cancel it first" in refused.stderr, refused
    cancelled = ingest(url, "--json", "cancel", "cafe0123")
    assert cancelled.code == 0, cancelled
    assert cancelled.json()["status"] == "cancelled"
    again = ingest(url, "cancel", "cafe0123")
    assert again.code == 0 and "cancelled" in again.stderr

    # Then, finished, it can be deleted, and is gone
    deleted = ingest(url, "delete", "cafe0123")
    assert deleted.code == 0 and "deleted" in deleted.stderr, deleted
    gone = ingest(url, "job", job_id)
    assert gone.code == 2 and "no job" in gone.stderr


def test_rejected_rows_are_retried_by_a_short_id_and_waited_for(url: str, loaded: Run) -> None:
    # Given the sample upload, whose 70 rejected rows still break the same rules
    job = hired_job(url)

    # When its rejected rows are retried, named by a short id, and waited for
    run = ingest(url, "retry-rejected", job["job_id"][:8], "--wait")

    # Then a new job, linked to the first, ends with none of them inserted
    assert run.code == 0, run
    assert f"retries the rejected rows of job {job['job_id'][:8]}" in run.stderr
    [summary] = run.stdout.strip().splitlines()
    assert summary.startswith("hired_employees: succeeded, 0 inserted, ")
    retry_id = summary.rsplit("(job ", 1)[1].split(")")[0]
    retried = ingest(url, "--json", "job", retry_id).json()
    assert retried["retry_of"] == job["job_id"]
    assert retried["rows_rejected"] + len(retried["warnings"]) > 0
    assert ingest(url, "--json", "job", job["job_id"]).json()["retried_by"] == [retried["job_id"]]


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


def test_rejected_rows_as_a_table_say_how_to_see_the_rest(url: str, loaded: Run) -> None:
    job = hired_job(url)
    page = ingest(url, "rejected", job["job_id"], "--json", "-n", "5").json()

    run = ingest(url, "rejected", job["job_id"], "-n", "5")

    assert run.code == 0, run
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["line", "row", "broken", "rules"]
    for row in page["items"]:
        rules = "; ".join(f"{e['column']}: {e['rule']}" for e in row["errors"])
        # Line numbers as an editor shows them, one column for the broken rules.
        assert line_with(lines, row["raw"]).split()[0] == str(row["line"])
        assert line_with(lines, row["raw"]).rstrip().endswith(rules)
    assert "--offset 5" in run.stderr and "--csv" in run.stderr


def test_tables_lists_the_three_tables_with_their_rows(url: str, loaded: Run) -> None:
    answer = ingest(url, "tables", "--json").json()

    assert [t["name"] for t in answer["tables"]] == ["departments", "jobs", "hired_employees"]
    rows = {t["name"]: t["rows"] for t in answer["tables"]}
    assert (rows["departments"], rows["jobs"]) == (12, 183)
    assert rows["hired_employees"] >= 1929
    shown = ingest(url, "tables")
    assert shown.code == 0, shown
    assert "datetime timestamp" in shown.stdout and "department_id id" in shown.stdout


def test_jobs_for_a_table_that_does_not_exist(url: str) -> None:
    run = ingest(url, "jobs", "--table", "bogus")
    assert run.code == 2
    [line] = run.stderr.strip().splitlines()
    assert "'bogus'" in line and "hired_employees" in line


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
    # Without --year: the latest year with hires, which the answer names.
    latest = ingest(url, "--json", "report", "hires-by-quarter").json()
    years = {int(line.split(",")[2][:4]) for line in hired_lines() if line.count(",") == 4}
    assert latest["year"] == max(years)


def hired_lines() -> list[str]:
    return [
        line
        for line in (SAMPLE_DATA / "hired_employees.csv").read_text(encoding="utf-8").splitlines()
        if all(field.strip() for field in line.split(","))
    ]


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
    assert run.stderr.strip().splitlines() == ["error: no job with id 'no-such-job'"]


def test_an_unreachable_service_is_one_line_and_exit_code_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    run = ingest(url, "jobs")

    assert run.code == 3
    assert run.stdout == ""
    assert run.stderr.strip().splitlines() == [
        f"error: cannot reach the service at {url}: is it running? (make run)"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["upload"],  # FILE missing
        ["upload", str(SAMPLE_DATA / "jobs.csv")],  # --table missing
        ["jobs", "--limit", "0"],
        ["jobs", "--status", "bogus"],
        ["no-such-command"],
        ["restore"],  # neither a backup nor a run
    ],
)
def test_usage_errors_exit_with_code_2(url: str, args: list[str]) -> None:
    run = ingest(url, *args)
    assert run.code == 2, run
    assert run.stdout == ""


def test_help_names_the_arguments_plainly(url: str) -> None:
    run = ingest(url, "upload", "--help")
    assert run.code == 0
    assert run.stdout.splitlines()[0] == "Usage: ingest upload [OPTIONS] FILE"
    assert "<bool>" not in run.stdout
    assert "-w, --wait" in run.stdout


# --- dead letters ---------------------------------------------------------------------------


def test_a_failed_upload_exits_1_and_its_dead_letter_can_be_purged(
    url: str, loaded: Run, tmp_path: Path
) -> None:
    job_id = failed_upload(url, tmp_path)
    letter = letter_of(url, job_id)
    assert letter["reason"] == "NotText"
    shown = ingest(url, "dead-letters", "show", letter["id"])
    assert shown.code == 0 and job_id in shown.stdout
    assert job_id[:8] in ingest(url, "dead-letters", "list").stdout

    purged = ingest(url, "dead-letters", "purge", letter["id"])

    assert purged.code == 0 and f"purged dead letter {letter['id']}" in purged.stdout
    left = ingest(url, "dead-letters", "list", "--json").json()["items"]
    assert letter["id"] not in {x["id"] for x in left}
    again = ingest(url, "dead-letters", "purge", letter["id"])
    assert again.code == 2 and again.stderr.startswith("error: no dead letter with id")


def test_a_resubmitted_dead_letter_runs_its_job_again(
    url: str, loaded: Run, tmp_path: Path
) -> None:
    # Given a job that failed for good and was dead-lettered,
    job_id = failed_upload(url, tmp_path)
    first = letter_of(url, job_id)

    # when its dead letter is resubmitted,
    run = ingest(url, "dead-letters", "resubmit", first["id"])

    # then the CLI says the job is queued again, and the job runs again: it fails again (it
    # is still not text) and is dead-lettered anew.
    assert run.code == 0, run
    assert run.stdout.strip() == (
        f"resubmitted dead letter {first['id']} (job {job_id[:8]} queued again)"
    )
    deadline = time.monotonic() + JOB_SECONDS
    while True:
        letters = ingest(url, "dead-letters", "list", "--json").json()["items"]
        again = [x for x in letters if x["job_id"] == job_id]
        if again and again[0]["dead_lettered_at"] > first["dead_lettered_at"]:
            break
        assert time.monotonic() < deadline, letters
        time.sleep(0.2)
    # The message is dead-lettered first, then its job marked failed.
    while ingest(url, "--json", "job", job_id).json()["status"] != "failed":
        assert time.monotonic() < deadline, "the job was not failed again"
        time.sleep(0.2)
    ingest(url, "dead-letters", "purge", again[0]["id"])


# --- backups ----------------------------------------------------------------------------------


def test_back_up_every_table_and_list_one_tables_backups(url: str, loaded: Run) -> None:
    # Given a backup of every table, as one run,
    taken = ingest(url, "--json", "backup")
    assert taken.code == 0, taken
    run = taken.json()
    assert {b["table"]: b["row_count"] for b in run["backups"]} == {
        "departments": 12,
        "jobs": 183,
        "hired_employees": 1929,
    }
    assert {b["run_id"] for b in run["backups"]} == {run["run_id"]}
    by_table = {b["table"]: b["backup_id"] for b in run["backups"]}

    # when the backups of one table are listed,
    listed = ingest(url, "backups", "--table", "jobs")

    # then only that table's are shown.
    assert listed.code == 0, listed
    assert by_table["jobs"][:8] in listed.stdout
    assert by_table["departments"][:8] not in listed.stdout
    assert by_table["hired_employees"][:8] not in listed.stdout
    everything = ingest(url, "backups")
    assert all(backup_id[:8] in everything.stdout for backup_id in by_table.values())


def test_a_restore_asks_first(url: str, loaded: Run) -> None:
    backup = ingest(url, "--json", "backup", "jobs").json()
    restore = ["restore", backup["backup_id"][:8]]

    # Without a terminal to ask at, only --yes goes ahead;
    refused = ingest(url, *restore)
    assert refused.code == 2 and "--yes" in refused.stderr
    # at a terminal, the question says what will be replaced, and "no" changes nothing;
    code, lines = on_screen(url, 80, *restore, typed=b"n\n")
    assert code == 1
    text = " ".join(lines)
    assert "Replace every row of jobs with the 183 rows of backup" in text
    assert "nothing was restored" in text
    # "yes" restores.
    code, lines = on_screen(url, 80, *restore, typed=b"y\n")
    assert code == 0, lines
    assert "restored jobs: 183 rows" in lines


def test_restore_a_table_and_a_whole_run(url: str, loaded: Run) -> None:
    run = ingest(url, "--json", "backup").json()

    one = ingest(url, "restore", run["backups"][0]["backup_id"], "--yes")
    assert one.code == 0, one
    assert f"restored {run['backups'][0]['table']}:" in one.stdout

    whole = ingest(url, "restore", "--run", run["run_id"][:8], "--yes")
    assert whole.code == 0, whole
    restored = [line for line in whole.stdout.splitlines() if line.startswith("restored ")]
    assert restored == [
        "restored departments: 12 rows",
        "restored jobs: 183 rows",
        "restored hired_employees: 1,929 rows",
    ]
    missing = ingest(url, "restore", "nonexistent", "--yes")
    assert missing.code == 2
    assert missing.stderr.strip().splitlines() == ["error: no backup with id 'nonexistent'"]


# --- the terminal ---------------------------------------------------------------------------


@pytest.mark.parametrize("columns", WIDTHS)
def test_upload_all_in_a_terminal_fits_its_width(url: str, loaded: Run, columns: int) -> None:
    code, lines = on_screen(url, columns, "upload-all", str(SAMPLE_DATA), "--force", "--wait")

    assert code == 0, "\n".join(lines)
    # One line per job's bar, its figures whole; then one final line per job, whole.
    for table in ("departments", "jobs", "hired_employees"):
        line_with(lines, f"{table} ", "100%", " rows")
    final = " ".join(lines)
    for table in ("departments", "jobs", "hired_employees"):
        assert f"{table}: succeeded, 0 inserted" in final


@pytest.mark.parametrize("columns", WIDTHS)
def test_tables_fit_the_terminal_with_ids_and_figures_whole(
    url: str, loaded: Run, tmp_path: Path, columns: int
) -> None:
    jobs = ingest(url, "jobs", "--json").json()["items"]
    failed_upload(url, tmp_path)
    ingest(url, "backup")

    code, lines = on_screen(url, columns, "jobs")
    assert code == 0
    for job in jobs:
        line_with(lines, job["job_id"][:8], f" {job['table']} ", job["status"])

    job = hired_job(url)
    code, lines = on_screen(url, columns, "rejected", job["job_id"][:8], "-n", "5")
    assert code == 0
    # A row's first screen line starts with its line number; wrapped text is indented.
    assert [line.split()[0] for line in lines[2:] if line[:1].isdigit()] == [
        str(r["line"])
        for r in ingest(url, "rejected", job["job_id"], "-n", "5", "--json").json()["items"]
    ]

    for args in (
        ["job", job["job_id"][:8]],
        ["dead-letters", "list"],
        ["backups"],
        ["report", "hires-by-quarter", "--year", "2021"],
        ["report", "departments-above-mean"],
        ["--help"],
        ["upload", "--help"],
    ):
        code, lines = on_screen(url, columns, *args)
        assert code == 0, (args, lines)
    backups = ingest(url, "backups", "--json").json()["items"]
    code, lines = on_screen(url, columns, "backups")
    for b in backups:
        line_with(lines, b["backup_id"][:8], f" {b['table']} ", f"{b['row_count']:,}")


# --- a service with keys -----------------------------------------------------------------------


def test_the_api_key_comes_from_the_option_or_the_environment(tmp_path: Path) -> None:
    keys = f"{READER_KEY}=read,{ADMIN_KEY}=admin"
    with api(tmp_path, API_KEYS=keys) as keyed:
        assert keyed.base_url is not None
        url = keyed.base_url

        without = ingest(url, "jobs")
        assert without.code == 2
        assert "(pass --api-key or set INGEST_API_KEY)" in without.stderr

        assert ingest(url, "jobs", "--api-key", READER_KEY).code == 0
        assert ingest(url, "--api-key", READER_KEY, "jobs").code == 0
        assert ingest(url, "jobs", env={"INGEST_API_KEY": READER_KEY}).code == 0
        wrong = ingest(url, "jobs", "--api-key", "not-a-key-0123456789")
        assert wrong.code == 2 and "--api-key" not in wrong.stderr

        # A key with too small a role is refused, and the CLI says so in a line.
        letters = ["dead-letters", "list"]
        too_small = ingest(url, *letters, env={"INGEST_API_KEY": READER_KEY})
        assert too_small.code == 2
        assert len(too_small.stderr.strip().splitlines()) == 1
        assert ingest(url, *letters, env={"INGEST_API_KEY": ADMIN_KEY}).code == 0
