"""The ``ingest`` app: global options, and the command groups wired in."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cli.client import Options
from cli.command import group
from cli.commands import backups, catalog, dead_letters, jobs, reports, tables, uploads

DEFAULT_URL = "http://127.0.0.1:8000"
_VALUED = ("--url", "--api-key")
_FLAGS = ("--json",)


class GlobalOptionsAnywhere(TyperGroup):
    """Accept the global options after the command too: ``ingest jobs --json``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        front: list[str] = []
        rest: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                rest.extend(args[i:])
                break
            if arg in _FLAGS or ("=" in arg and arg.split("=", 1)[0] in _VALUED):
                front.append(arg)
            elif arg in _VALUED and i + 1 < len(args):
                front.extend(args[i : i + 2])
                i += 1
            else:
                rest.append(arg)
            i += 1
        return super().parse_args(ctx, front + rest)


app = group(
    cls=GlobalOptionsAnywhere,
    name="ingest",
    help="Operate the CSV ingestion service over its HTTP API.",
)


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Option("--url", envvar="INGEST_URL", metavar="URL", help="Base URL of the service."),
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="INGEST_API_KEY",
            metavar="KEY",
            help="API key, sent as 'Authorization: Bearer <key>'.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON for programs instead of tables.")
    ] = False,
) -> None:
    """Operate the CSV ingestion service over its HTTP API.

    The global options may come before or after the command.
    """
    ctx.obj = Options(url=url.rstrip("/"), api_key=api_key or None, json=json_output)


uploads.register(app)
jobs.register(app)
reports.register(app)
app.add_typer(dead_letters.app, name="dead-letters")
backups.register(app)
tables.register(app)
catalog.register(app)
