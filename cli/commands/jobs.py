"""``ingest jobs``, ``ingest job`` and ``ingest rejected``: what the jobs did."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.client import Client, options_of
from cli.output import EXIT_USAGE, fail, fields, note, print_json, short_time, table

Limit = Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Items per page.")]
Offset = Annotated[int, typer.Option("--offset", min=0, help="Items to skip.")]


class Status(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def _progress(job: dict[str, object]) -> str:
    done, total = job.get("bytes_done"), job.get("size_bytes")
    if not isinstance(done, int) or not isinstance(total, int):
        return "-"
    return f"{100 * done / total:.0f}%" if total else "100%"


def list_jobs(
    ctx: typer.Context,
    status: Annotated[Status | None, typer.Option("--status", "-s", help="Only these.")] = None,
    table_name: Annotated[
        str | None, typer.Option("--table", "-t", help="Only jobs for this table.")
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
    table(
        [
            "job",
            "table",
            "status",
            "done",
            "inserted",
            "rejected",
            "created",
        ],
        (
            [
                j["job_id"],
                j["table"],
                j["status"],
                _progress(j),
                j["rows_inserted"],
                j["rows_rejected"],
                short_time(j["created_at"]),
            ]
            for j in page["items"]
        ),
    )
    note(f"{len(page['items'])} of {page['total']} job(s)")


def show_job(
    ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="The job's id.")]
) -> None:
    """Show one job: status, progress, counts and error."""
    options = options_of(ctx)
    with Client(options) as client:
        job = client.json("GET", f"/jobs/{job_id}")
    if options.json:
        print_json(job)
    else:
        fields(job, title=f"job {job_id}")


def rejected(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            dir_okay=False,
            writable=True,
            help="Download every rejected row as CSV to this file ('-' for stdout).",
        ),
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> None:
    """Rejected rows of a job, by line, with the rules each broke."""
    options = options_of(ctx)
    with Client(options) as client:
        if csv_file is not None:
            _download(client, f"/jobs/{job_id}/rejected-rows", csv_file)
            return
        page = client.json(
            "GET", f"/jobs/{job_id}/rejected-rows", params={"limit": limit, "offset": offset}
        )
    if options.json:
        print_json(page)
        return
    table(
        ["line", "raw", "rules", "messages"],
        (
            [
                r["line"],
                r["raw"],
                ", ".join(f"{e['column']}: {e['rule']}" for e in r["errors"]),
                "; ".join(e["message"] for e in r["errors"]),
            ]
            for r in page["items"]
        ),
    )
    note(f"{len(page['items'])} of {page['total']} rejected row(s)")


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
    app.command("jobs")(list_jobs)
    app.command("job")(show_job)
    app.command("rejected")(rejected)
