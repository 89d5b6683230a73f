"""Follow jobs until they finish, with a progress bar each, then sum them up in final lines."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from rich.progress import TaskID

from cli.bars import jobs_bar
from cli.client import Client
from cli.jobview import status_line
from cli.output import EXIT_FAILED, note, print_json, say, short_id
from common.model.jobs import JobStatus

POLL_SECONDS = 0.5
DONE = frozenset(s.value for s in JobStatus if s.terminal)
Job = dict[str, Any]


def _rows(job: Job) -> str:
    return f"{job['rows_read']:,} rows"


def wait_for(client: Client, jobs: list[Job], *, quiet: bool) -> list[Job]:
    """Poll every job until each has succeeded or failed; the final states, in order."""
    latest = {j["job_id"]: j for j in jobs}
    with jobs_bar(quiet=quiet) as progress:
        bars: dict[str, TaskID] = {
            job_id: progress.add_task(j["table"], total=j["size_bytes"] or 1, rows=_rows(j))
            for job_id, j in latest.items()
        }
        while True:
            for job_id, j in latest.items():
                if j["status"] not in DONE:
                    latest[job_id] = j = client.json("GET", f"/jobs/{job_id}")
                done = j["bytes_done"] if j["size_bytes"] else int(j["status"] in DONE)
                progress.update(bars[job_id], completed=done, rows=_rows(j))
            if all(j["status"] in DONE for j in latest.values()):
                break
            time.sleep(POLL_SECONDS)
    return [latest[j["job_id"]] for j in jobs]


def _seconds(job: Job) -> float | None:
    try:
        start = datetime.fromisoformat(job["created_at"])
        end = datetime.fromisoformat(job["finished_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return (end - start).total_seconds()


def outcome(job: Job) -> str:
    """One line: ``table: status, N inserted, N rejected in S s (job ID)[: error]``; a dry run
    counts the rows that would load instead (``N valid, N rejected, nothing written``)."""
    took = _seconds(job)
    if job.get("dry_run"):
        valid = job["rows_read"] - job["rows_rejected"]
        counts = f"{valid} valid, {job['rows_rejected']} rejected, nothing written"
    else:
        counts = f"{job['rows_inserted']} inserted, {job['rows_rejected']} rejected"
    line = (
        f"{job['table']}: {status_line(job)}, {counts}"
        + (f" in {took:.1f} s" if took is not None else "")
        + f" (job {short_id(job['job_id'])})"
    )
    if job["status"] == JobStatus.FAILED:
        line += f": {job.get('error') or 'no reason given'}"
    for warning in job.get("warnings") or ():
        line += f"; warning: {warning}"
    return line


def summarize(jobs: list[Job], *, as_json: bool) -> int:
    """Print what each job did; the exit code: 0 if all succeeded, 1 if any failed."""
    if as_json:
        print_json(jobs if len(jobs) > 1 else jobs[0])
    else:
        for job in jobs:
            say(outcome(job))
    failed = [j for j in jobs if j["status"] == JobStatus.FAILED]
    if failed and not as_json:
        note(f"{len(failed)} job(s) failed; see 'ingest dead-letters list'")
    return EXIT_FAILED if failed else 0
