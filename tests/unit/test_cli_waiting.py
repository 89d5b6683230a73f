"""The final line the CLI prints for a job it waited for."""

from __future__ import annotations

from cli.waiting import outcome

JOB = {
    "job_id": "d14b8990-0000-4000-8000-000000000001",
    "table": "departments",
    "status": "succeeded",
    "rows_inserted": 2,
    "rows_rejected": 1,
    "created_at": "2026-12-01T00:00:00+00:00",
    "finished_at": "2026-12-01T00:00:01.5+00:00",
    "warnings": [],
}


def test_a_job_is_summed_up_in_one_line() -> None:
    assert outcome(JOB) == (
        "departments: succeeded, 2 inserted, 1 rejected in 1.5 s (job d14b8990)"
    )


def test_its_warnings_follow_on_the_same_line() -> None:
    warned = {**JOB, "warnings": ["line 1 looks like a header row"]}
    assert outcome(warned).endswith("(job d14b8990); warning: line 1 looks like a header row")
