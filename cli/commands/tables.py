"""``ingest tables``: the tables the service loads, as its catalog declares them."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.client import Client, options_of
from cli.command import Command
from cli.output import print_json, say, table


def declared_tables(client: Client) -> list[dict[str, Any]]:
    """The service's tables, parents first (``GET /tables``)."""
    tables: list[dict[str, Any]] = client.json("GET", "/tables")["tables"]
    return tables


def column_type(column: dict[str, Any]) -> str:
    """A column's type as the catalog spells it: ``text(255)``, ``decimal(12, 4)``."""
    kind = str(column["type"])
    if column.get("max_length") is not None:
        return f"{kind}({column['max_length']})"
    if column.get("precision") is not None:
        return f"{kind}({column['precision']}, {column['scale']})"
    return kind


def _about(column: dict[str, Any], key: str) -> str:
    said = []
    if column["name"] == key:
        said.append("primary key")
    if column.get("references"):
        said.append(f"references {column['references']}")
    if not column["required"]:
        marker = column.get("null_marker") or ""
        said.append(f"optional (null: {marker!r})" if marker else "optional")
    if column.get("unique"):
        said.append("unique")
    if column.get("timezone") == "assume_utc":
        said.append("UTC when it has no offset")
    return ", ".join(said)


def _overview(tables: list[dict[str, Any]]) -> None:
    table(
        ["table", "rows", "columns", "delimiter"],
        (
            [
                t["name"],
                t["rows"],
                ", ".join(f"{c['name']} {column_type(c)}" for c in t["columns"]),
                repr(t["delimiter"]),
            ]
            for t in tables
        ),
        title="Tables, parents first",
        optional=["delimiter"],
    )


def _one(spec: dict[str, Any]) -> None:
    skip = spec["skip_leading_rows"]
    layout = f"delimiter {spec['delimiter']!r}"
    if skip:
        layout += f", {skip} leading row(s) skipped"
    say(f"{spec['name']}: {spec['rows']:,} rows, {layout}")
    table(
        ["column", "type", "about"],
        ([c["name"], column_type(c), _about(c, spec["primary_key"])] for c in spec["columns"]),
    )


def tables(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(metavar="TABLE", help="Show this table's columns one per line."),
    ] = None,
) -> None:
    """The tables the service loads, parents first, with their columns and row counts.

    The order is the one `ingest upload-all` loads a folder's files in.
    """
    options = options_of(ctx)
    with Client(options) as client:
        answer = client.json("GET", f"/tables/{name}" if name else "/tables")
    if options.json:
        print_json(answer)
    elif name:
        _one(answer)
    else:
        _overview(answer["tables"])


def register(app: typer.Typer) -> None:
    app.command("tables", cls=Command)(tables)
