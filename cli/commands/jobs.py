"""``ingest jobs``, ``ingest job`` and ``ingest rejected``: what the jobs did."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli import ids
from cli.client import Client, options_of
from cli.command import Command
from cli.jobview import job_fields, options_text, status_cell
from cli.output import EXIT_USAGE, fail, fields, note, print_json, short_id, short_time, table
from cli.waiting import summarize, wait_for
from common.model.jobs import JobStatus

Limit = Annotated[
    int, typer.Option("--limit", "-n", min=1, max=1000, metavar="N", help="Items per page.")
]
Offset = Annotated[int, typer.Option("--offset", min=0, metavar="N", help="Items to skip.")]
JobId = Annotated[
    str,
    typer.Argument(
        metavar="JOB_ID", help="The job's id, or its first 6+ characters (from 'ingest jobs')."
    ),
]


def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        JobStatus | None, typer.Option("--status", "-s", help="Only jobs with this status.")
    ] = None,
    table_name: Annotated[
        str | None,
        typer.Option("--table", "-t", metavar="TABLE", help="Only jobs that load this table."),
    ] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> None:
    """List jobs, newest first."""
    options = options_of(ctx)
    with Client(options) as client:
        page = client.json(
            "GET",
            "/jobs",
            params={
                "status": status.value if status else None,
                "table": table_name,
                "limit": limit,
                "offset": offset,
            },
        )
    if options.json:
        print_json(page)
        return
    items = page["items"]
    # An options column only when a job on the page has some; it gives way to the
    # essentials at narrow widths.
    optioned = any(options_text(j) for j in items)
    columns = ["job", "table", "status", "inserted", "rejected"]
    table(
        columns + (["options"] if optioned else []) + ["created"],
        (
            [
                short_id(j["job_id"]),
                j["table"],
                status_cell(j),
                j["rows_inserted"],
                j["rows_rejected"],
                *([options_text(j) or ""] if optioned else []),
                short_time(j["created_at"], seconds=False),
            ]
            for j in items
        ),
        optional=["created", "options"],
    )
    note(f"{len(page['items'])} of {page['total']} job(s)")


def show_job(ctx: typer.Context, job_id: JobId) -> None:
    """Show one job: status, progress, counts and error."""
    options = options_of(ctx)
    with Client(options) as client:
        job = client.json("GET", f"/jobs/{ids.job_id(client, job_id)}")
    if options.json:
        print_json(job)
    else:
        fields(job_fields(job), title=f"job {job['job_id']}")


def cancel(ctx: typer.Context, job_id: JobId) -> None:
    """Cancel a queued or running job (admin).

    A queued job ends at once; a running one stops at its next block. Rows already committed
    stay in the table and are counted.
    """
    options = options_of(ctx)
    with Client(options) as client:
        job = client.json("POST", f"/jobs/{ids.job_id(client, job_id)}/cancel")
    if options.json:
        print_json(job)
        return
    note(
        f"job {short_id(job['job_id'])} cancelled: {job['rows_inserted']} row(s) inserted and "
        f"{job['rows_rejected']} rejected before it stopped"
    )


def retry_rejected(
    ctx: typer.Context,
    job_id: JobId,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow the new job until it ends.")
    ] = False,
) -> None:
    """Load a finished job's rejected rows again, as a new job (write).

    Once the tables have what the rows lacked (the departments they reference, say), the rows
    valid now are inserted; the rest are rejected again under their original line numbers.
    """
    options = options_of(ctx)
    with Client(options) as client:
        first = ids.job_id(client, job_id)
        job = client.json("POST", f"/jobs/{first}/retry-rejected")
        if not options.json:
            note(
                f"job {short_id(job['job_id'])} retries the rejected rows of job "
                f"{short_id(first)} ({job['status']})"
            )
            for warning in job["warnings"]:
                note(f"warning: {warning}")
        if wait:
            final = wait_for(client, [job], quiet=options.json)
            raise typer.Exit(summarize(final, as_json=options.json))
    if options.json:
        print_json(job)


def delete(ctx: typer.Context, job_id: JobId) -> None:
    """Delete a finished job, its rejected rows and its uploaded file (admin).

    The rows it loaded stay in the table.
    """
    options = options_of(ctx)
    with Client(options) as client:
        full = ids.job_id(client, job_id)
        client.request("DELETE", f"/jobs/{full}")
    if options.json:
        print_json({"deleted": full})
        return
    note(f"job {short_id(full)} deleted")


def _rules(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['column']}: {e['rule']}" for e in errors)


def _footer(shown: int, offset: int, total: int) -> str:
    if not shown:
        return f"no rejected rows past the first {total}" if total else "no rejected rows"
    first, last = offset + 1, offset + shown
    where = f"{first}-{last} of {total}" if (first, last) != (1, total) else f"all {total}"
    line = f"rejected rows {where}"
    if last < total:
        line += f"; the next ones: --offset {last}; every one as CSV: --csv FILE"
    return line


def rejected(
    ctx: typer.Context,
    job_id: JobId,
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            dir_okay=False,
            writable=True,
            metavar="FILE",
            help="Save every rejected row as CSV to FILE ('-' for stdout) instead.",
        ),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> None:
    """Rejected rows of a job, with the rules each broke.

    A page of JOB_ID's rejected rows: line number, the row as received, the broken rules.
    """
    options = options_of(ctx)
    with Client(options) as client:
        path = f"/jobs/{ids.job_id(client, job_id)}/rejected-rows"
        if csv_file is not None:
            _download(client, path, csv_file)
            return
        page = client.json("GET", path, params={"limit": limit, "offset": offset})
    if options.json:
        print_json(page)
        return
    table(
        ["line", "row", "broken rules"],
        ([str(r["line"]), r["raw"], _rules(r["errors"])] for r in page["items"]),
    )
    note(_footer(len(page["items"]), offset, page["total"]))


def _download(client: Client, path: str, target: Path) -> None:
    """Stream a CSV answer into ``target`` (or stdout for ``-``), never holding it whole."""
    with client.stream("GET", path, headers={"Accept": "text/csv"}) as response:
        if str(target) == "-":
            out = typer.get_binary_stream("stdout")
            for chunk in response.iter_bytes():
                out.write(chunk)
            out.flush()
            return
        written = 0
        try:
            with target.open("wb") as f:
                for chunk in response.iter_bytes():
                    f.write(chunk)
                    written += len(chunk)
        except OSError as exc:
            fail(f"cannot write {target}: {exc.strerror}", EXIT_USAGE)
    note(f"wrote {written:,} bytes to {target}")


def register(app: typer.Typer) -> None:
    app.command("jobs", cls=Command)(list_jobs)
    app.command("job", cls=Command)(show_job)
    app.command("rejected", cls=Command)(rejected)
    app.command("cancel", cls=Command)(cancel)
    app.command("retry-rejected", cls=Command)(retry_rejected)
    app.command("delete", cls=Command)(delete)
