"""``ingest upload`` and ``ingest upload-all``: stream CSV files to the service."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.bars import upload_bar
from cli.client import Client, options_of
from cli.command import Command
from cli.commands.tables import declared_tables
from cli.jobview import job_fields
from cli.load_options import (
    AllowQuotedNewlines,
    Atomic,
    DryRun,
    LoadFlags,
    MaxBadPercent,
    MaxBadRecords,
    SkipLeadingRows,
    Write,
)
from cli.output import EXIT_USAGE, fail, fields, note, print_json, short_id
from cli.waiting import summarize, wait_for
from common.model.options import WriteMode

CHUNK_BYTES = 1024 * 1024
# Long uploads: no read timeout while the body goes out and the service stores it.
UPLOAD_TIMEOUT_SECONDS = 3600.0


class OnConflict(StrEnum):
    reject = "reject"
    update = "update"


def _chunks(path: Path, advance: Callable[[int], None]) -> Iterator[bytes]:
    """The file, a chunk at a time, advancing the bar as each is handed to the connection."""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            yield chunk
            advance(len(chunk))


class _Counted(io.FileIO):
    """A file opened for reading that reports each read to a progress bar."""

    def __init__(self, path: Path, advance: Callable[[int], None]) -> None:
        super().__init__(path, "rb")
        self._advance = advance

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size) or b""
        self._advance(len(data))
        return data


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", EXIT_USAGE)


def _announce(jobs: list[dict[str, Any]], created: bool, as_json: bool, waiting: bool) -> None:
    if as_json:
        if not waiting:
            print_json(jobs[0] if len(jobs) == 1 else {"jobs": jobs})
        return
    if not created:
        note("identical content was uploaded before: showing the existing job(s)")
    for job in jobs:
        if not waiting:
            fields(job_fields(job), title=f"job {job['job_id']}")
        else:
            note(f"{job['table']}: job {short_id(job['job_id'])} ({job['status']})")


def upload(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="FILE",
            help="The CSV file: headerless, UTF-8.",
        ),
    ],
    table: Annotated[
        str,
        typer.Option(
            "--table",
            "-t",
            metavar="TABLE",
            help="Table to load (`ingest tables` lists them).",
        ),
    ],
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow the job until it ends.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Load it even if identical content was loaded before.")
    ] = False,
    on_conflict: Annotated[
        OnConflict,
        typer.Option("--on-conflict", help="A row whose id exists: reject it, or update the row."),
    ] = OnConflict.reject,
    max_bad_records: MaxBadRecords = None,
    max_bad_percent: MaxBadPercent = None,
    atomic: Atomic = False,
    write: Write = WriteMode.APPEND,
    dry_run: DryRun = False,
    skip_leading_rows: SkipLeadingRows = None,
    allow_quoted_newlines: AllowQuotedNewlines = False,
) -> None:
    """Upload one CSV file into one table.

    FILE is streamed as the request body into the table given by --table.
    """
    options = options_of(ctx)
    flags = LoadFlags(
        max_bad_records,
        max_bad_percent,
        atomic,
        write,
        dry_run,
        skip_leading_rows,
        allow_quoted_newlines,
    )
    if on_conflict is OnConflict.update:
        flags.refuse_with_update()
    total = _file_size(file)
    with Client(options) as client:
        with upload_bar(quiet=options.json) as progress:
            bar = progress.add_task(file.name, total=total)
            response = client.request(
                "POST",
                f"/uploads/{table}",
                params={
                    "filename": file.name,
                    "force": force or None,
                    "on_conflict": on_conflict.value,
                    **flags.params(),
                },
                headers={"Content-Type": "text/csv", "Content-Length": str(total)},
                content=_chunks(file, lambda n: progress.advance(bar, n)),
                timeout=UPLOAD_TIMEOUT_SECONDS,
            )
        job = response.json()
        _announce([job], response.status_code == 202, options.json, wait)
        if wait:
            final = wait_for(client, [job], quiet=options.json)
            raise typer.Exit(summarize(final, as_json=options.json))


def upload_all(
    ctx: typer.Context,
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True,
            file_okay=False,
            metavar="DIRECTORY",
            help="Folder holding a CSV file per table, named after it: TABLE.csv.",
        ),
    ],
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow the jobs until they end.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Load files even if identical content was loaded before."),
    ] = False,
    max_bad_records: MaxBadRecords = None,
    max_bad_percent: MaxBadPercent = None,
    atomic: Atomic = False,
    write: Write = WriteMode.APPEND,
    dry_run: DryRun = False,
    skip_leading_rows: SkipLeadingRows = None,
    allow_quoted_newlines: AllowQuotedNewlines = False,
) -> None:
    """Upload a folder's table files in one request.

    The files of DIRECTORY named after the tables go in one request; parents load first.
    With --atomic (or any option that implies it) they are published together or not at all.
    """
    options = options_of(ctx)
    flags = LoadFlags(
        max_bad_records,
        max_bad_percent,
        atomic,
        write,
        dry_run,
        skip_leading_rows,
        allow_quoted_newlines,
    )
    with Client(options) as client:
        # The service's tables, parents first: the order it loads a folder's files in.
        names = [t["name"] for t in declared_tables(client)]
        found = [(t, directory / f"{t}.csv") for t in names if (directory / f"{t}.csv").is_file()]
        if not found:
            fail(
                f"no {', '.join(t + '.csv' for t in names)} in {directory}: nothing to upload",
                EXIT_USAGE,
            )
        total = sum(_file_size(path) for _, path in found)
        with upload_bar(quiet=options.json) as progress:
            bar = progress.add_task(f"{len(found)} files", total=total)
            opened: list[_Counted] = []
            try:
                for _, path in found:
                    opened.append(_Counted(path, lambda n: progress.advance(bar, n)))
                files = {
                    table: (path.name, f, "text/csv")
                    for (table, path), f in zip(found, opened, strict=True)
                }
                response = client.request(
                    "POST",
                    "/uploads",
                    params={"force": force or None, **flags.params()},
                    files=files,
                    timeout=UPLOAD_TIMEOUT_SECONDS,
                )
            except OSError as exc:
                fail(f"cannot read {exc.filename}: {exc.strerror}", EXIT_USAGE)
            finally:
                for f in opened:
                    f.close()
        jobs = response.json()["jobs"]
        _announce(jobs, response.status_code == 202, options.json, wait)
        if wait:
            final = wait_for(client, jobs, quiet=options.json)
            raise typer.Exit(summarize(final, as_json=options.json))


def register(app: typer.Typer) -> None:
    app.command("upload", cls=Command)(upload)
    app.command("upload-all", cls=Command)(upload_all)
