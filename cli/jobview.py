"""A job as people read it: its status with progress and whether it is a dry run, and the load
options it runs with where they differ from the default."""

from __future__ import annotations

from typing import Any

from common.model.jobs import JobStatus

Job = dict[str, Any]
DRY_RUN = "dry run"


def progress(job: Job) -> str:
    """The status, with how far a running job has come."""
    done, total = job.get("bytes_done"), job.get("size_bytes")
    if (
        job["status"] == JobStatus.RUNNING
        and isinstance(done, int)
        and isinstance(total, int)
        and total
    ):
        return f"running {100 * done // total}%"
    return str(job["status"])


def options_text(job: Job) -> str | None:
    """``atomic, write=replace, max_bad_records=10``: the options other than a dry run (which
    the status shows), or ``None`` for a plain load."""
    shown = []
    for name, value in (job.get("options") or {}).items():
        if name == "dry_run":
            continue
        if value is True:
            shown.append(name)
        elif isinstance(value, float):
            shown.append(f"{name}={value:g}")
        else:
            shown.append(f"{name}={value}")
    return ", ".join(shown) or None


def status_line(job: Job) -> str:
    """The status on one line: ``succeeded (dry run)``."""
    return f"{progress(job)} ({DRY_RUN})" if job.get("dry_run") else progress(job)


def status_cell(job: Job) -> str:
    """The status for a table's narrow column: a dry run says so on a line of its own."""
    return f"{progress(job)}\n{DRY_RUN}" if job.get("dry_run") else progress(job)


def job_fields(job: Job) -> Job:
    """The job's fields for ``ingest job``: the status says whether it is a dry run, the
    options are one line of text."""
    shown = {k: v for k, v in job.items() if k != "dry_run"}
    shown["status"] = status_line(job)
    if "options" in shown:
        shown["options"] = options_text(job)
    return shown
