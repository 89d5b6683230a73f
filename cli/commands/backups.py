"""``ingest backup``, ``ingest backups``, ``ingest restore``: table backups in the blob store."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer

from cli.client import Client, Params, options_of
from cli.output import EXIT_USAGE, anything, fail, note, print_json, short_time, size, table

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
                b.get("backup_id"),
                b.get("table"),
                b.get("row_count"),
                size(b.get("byte_size")),
                short_time(b.get("created_at")),
                b.get("run_id"),
            ]
            for b in backups
        ),
        title=title,
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
            typer.echo(f"restored {name}: {rows:,} rows")
    if isinstance(data, dict) and "total" in data:
        note(f"{len(backups)} of {data['total']} backup(s)")


def backup(
    ctx: typer.Context,
    table_name: Annotated[
        str | None,
        typer.Argument(metavar="[TABLE]", help="Back up only this table (default: every table)."),
    ] = None,
) -> None:
    """Back up every table (one run, one snapshot), or one table, to the blob store."""
    options = options_of(ctx)
    with Client(options) as client:
        data = _call(client, "POST", f"/backups/{table_name}" if table_name else "/backups")
    _show(data, options.json, f"backup of {table_name or 'every table'}")


def list_backups(
    ctx: typer.Context,
    table_name: Annotated[
        str | None, typer.Option("--table", "-t", help="Only this table's.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
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


def restore(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(help="The backup's id (from 'ingest backups').")],
) -> None:
    """Replace a table's rows with a backup, in one transaction."""
    options = options_of(ctx)
    with Client(options) as client:
        data = _call(client, "POST", f"/backups/{backup_id}/restore")
    _show(data, options.json, f"restore of backup {backup_id}")


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("backups")(list_backups)
    app.command("restore")(restore)
