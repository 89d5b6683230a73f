"""``ingest backup``, ``ingest backups``, ``ingest restore``: table backups in the blob store."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import httpx
import typer

from cli import ids
from cli.client import Client, Params, options_of
from cli.command import Command
from cli.output import (
    EXIT_FAILED,
    EXIT_USAGE,
    anything,
    fail,
    note,
    print_json,
    say,
    short_id,
    short_time,
    size,
    table,
)

_ROUTE_MISSING = "Not Found"  # the detail of a 404 for a path no route serves


def _call(client: Client, method: str, path: str, params: Params | None = None) -> Any:
    """Call the backup API, saying so in one line when this service has none."""
    response = client.request(method, path, params=params, allow=frozenset({404}))
    if response.status_code == 404:
        _not_found(client, method, path, response)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def _not_found(client: Client, method: str, path: str, response: httpx.Response) -> None:
    detail = None
    try:
        body = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
    except ValueError:
        pass
    if detail in (None, _ROUTE_MISSING):
        fail(
            f"the service at {client.url} has no backup API ({method} {path} answered 404): "
            "upgrade the service",
            EXIT_USAGE,
        )
    client.refused(response)


def _backups_table(backups: list[dict[str, Any]], title: str | None = None) -> None:
    table(
        ["backup", "table", "rows", "size", "created", "run"],
        (
            [
                short_id(b.get("backup_id")),
                b.get("table"),
                b.get("row_count"),
                size(b.get("byte_size")),
                short_time(b.get("created_at"), seconds=False),
                short_id(b.get("run_id")),
            ]
            for b in backups
        ),
        title=title,
        optional=["run", "size"],
    )


def _show(data: Any, as_json: bool, title: str) -> None:
    """Backups as a table when the answer has the expected shape, anything else as it came."""
    if as_json:
        print_json(data)
        return
    backups = None
    if isinstance(data, dict):
        if isinstance(data.get("items"), list):
            backups = data["items"]
        elif isinstance(data.get("backups"), list):
            backups = data["backups"]
        elif "backup_id" in data:
            backups = [data]
    if backups is None or not all(isinstance(b, dict) for b in backups):
        anything(data, title=title)
        return
    _backups_table(backups, title=title)
    if isinstance(data, dict) and isinstance(data.get("restored"), dict):
        for name, rows in data["restored"].items():
            say(f"restored {name}: {rows:,} rows")
    if isinstance(data, dict) and "total" in data:
        note(f"{len(backups)} of {data['total']} backup(s)")


def backup(
    ctx: typer.Context,
    table_name: Annotated[
        str | None,
        typer.Argument(metavar="TABLE", help="Back up only this table (default: every table)."),
    ] = None,
) -> None:
    """Back up every table, or one.

    Every table is backed up from one snapshot, as one run; or only TABLE.
    """
    options = options_of(ctx)
    with Client(options) as client:
        data = _call(client, "POST", f"/backups/{table_name}" if table_name else "/backups")
    _show(data, options.json, f"backup of {table_name or 'every table'}")


def list_backups(
    ctx: typer.Context,
    table_name: Annotated[
        str | None,
        typer.Option("--table", "-t", metavar="TABLE", help="Only the backups of this table."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, metavar="N", help="Items per page.")
    ] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0, metavar="N", help="Items to skip.")] = 0,
) -> None:
    """List the backups, newest first."""
    options = options_of(ctx)
    with Client(options) as client:
        data = _call(
            client,
            "GET",
            "/backups",
            params={"table": table_name, "limit": limit, "offset": offset},
        )
    _show(data, options.json, "backups")


def _confirm(question: str) -> None:
    """Ask at the terminal; without one, only ``--yes`` goes ahead."""
    if not sys.stdin.isatty():
        fail("a restore replaces rows: pass --yes to confirm it without a terminal", EXIT_USAGE)
    if not typer.confirm(question, default=False, err=True):
        note("nothing was restored")
        raise typer.Exit(EXIT_FAILED)


def _question(records: list[dict[str, Any]], run: str | None) -> str:
    taken = short_time(records[0].get("created_at"))
    if run is None:
        b = records[0]
        return (
            f"Replace every row of {b['table']} with the {b['row_count']:,} rows of backup "
            f"{short_id(b['backup_id'])} taken {taken}?"
        )
    tables = ", ".join(f"{b['table']} ({b['row_count']:,} rows)" for b in records)
    return f"Replace every row of {tables} with backup run {short_id(run)} taken {taken}?"


def restore(
    ctx: typer.Context,
    backup_id: Annotated[
        str | None,
        typer.Argument(
            metavar="BACKUP_ID",
            help="The backup's id, or its first 6+ characters (from 'ingest backups').",
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            metavar="RUN_ID",
            help="Restore every table of this backup run instead, parents first.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Restore a table, or a whole run, from backups.

    Replaces the rows of BACKUP_ID's table with the backup (or every table of --run RUN_ID,
    parents first), in one transaction, once confirmed.
    """
    if (backup_id is None) == (run is None):
        fail("give either a BACKUP_ID or --run RUN_ID (see 'ingest backups')", EXIT_USAGE)
    options = options_of(ctx)
    with Client(options) as client:
        if run is not None:
            records = ids.backup_run(client, run)
            run_id: str | None = str(records[0]["run_id"])
            path = f"/backups/runs/{run_id}/restore"
        else:
            records = [ids.backup(client, str(backup_id))]
            run_id = None
            path = f"/backups/{records[0]['backup_id']}/restore"
        if not yes:
            _confirm(_question(records, run_id))
        data = _call(client, "POST", path)
    _show(data, options.json, f"backups of run {short_id(run_id)}" if run_id else "backup")


def register(app: typer.Typer) -> None:
    app.command("backup", cls=Command)(backup)
    app.command("backups", cls=Command)(list_backups)
    app.command("restore", cls=Command)(restore)
