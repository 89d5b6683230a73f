"""What the CLI prints: rich tables for people, JSON for programs, one-line errors for both."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

EXIT_FAILED = 1  # the operation ran and failed (a job failed)
EXIT_USAGE = 2  # the request was wrong: usage errors and HTTP 4xx
EXIT_UNAVAILABLE = 3  # the service could not be reached or failed: connection errors and 5xx

# Tables on stdout; progress bars and notes on stderr, so stdout stays clean for pipes.
stderr = Console(stderr=True, highlight=False)
# Columns that stay whole, so an id can be copied.
WHOLE = frozenset({"id", "job", "backup"})
NUMERIC = frozenset(
    {"size", "rows", "read", "inserted", "rejected", "hired", "Q1", "Q2", "Q3", "Q4", "deliveries"}
)
PIPE_WIDTH = 160


def stdout() -> Console:
    """The console for tables: the terminal's width, or a wide page when stdout is a pipe."""
    width = None
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        width = PIPE_WIDTH
    return Console(highlight=False, width=width)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def note(message: str) -> None:
    """A line for people, on stderr."""
    stderr.print(message, soft_wrap=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def short_time(value: Any) -> str:
    """An ISO timestamp from the API as ``YYYY-MM-DD HH:MM:SS``."""
    if not isinstance(value, str):
        return cell(value)
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def size(n: Any) -> str:
    if not isinstance(n, int):
        return cell(n)
    amount = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return str(n)  # pragma: no cover


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
) -> None:
    """A rich table on stdout; long values wrap rather than lose characters (ids)."""
    rows = list(rows)
    if not rows:
        return
    out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        out.add_column(
            name,
            justify="right" if name in NUMERIC else "left",
            overflow="fold",
            no_wrap=name in WHOLE or name in NUMERIC,
        )
    for row in rows:
        out.add_row(*(v if isinstance(v, str) else cell(v) for v in row))
    stdout().print(out)


def fields(data: Mapping[str, Any], *, title: str | None = None) -> None:
    """One object as a two-column table of its fields."""
    out = Table(title=title, title_justify="left", show_header=False)
    out.add_column("field", style="bold")
    out.add_column("value", overflow="fold")
    for key, value in data.items():
        out.add_row(key, short_time(value) if key.endswith("_at") else cell(value))
    stdout().print(out)


def anything(data: Any, *, title: str | None = None) -> None:
    """Whatever the API answered, as a table: a page, a list of objects, or one object."""
    if isinstance(data, Mapping) and isinstance(data.get("items"), list):
        anything(data["items"], title=title)
        if "total" in data:
            note(f"{len(data['items'])} of {data['total']}")
        return
    if isinstance(data, list) and data and all(isinstance(x, Mapping) for x in data):
        columns = list(dict.fromkeys(k for x in data for k in x))
        table(columns, ([x.get(c) for c in columns] for x in data), title=title)
    elif isinstance(data, list):
        note("nothing" if not data else ", ".join(cell(x) for x in data))
    elif isinstance(data, Mapping):
        fields(data, title=title)
    else:
        typer.echo(cell(data))
