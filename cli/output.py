"""What the CLI prints: tables that fit the terminal for people, JSON for programs, one-line
errors for both."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

EXIT_FAILED = 1  # the operation ran and failed (a job failed), or was declined
EXIT_USAGE = 2  # the request was wrong: usage errors and HTTP 4xx
EXIT_UNAVAILABLE = 3  # the service could not be reached or failed: connection errors and 5xx

# Tables and final lines on stdout; progress bars and notes on stderr, so stdout stays clean
# for pipes.
stderr = Console(stderr=True, highlight=False)
# Columns never cut or wrapped: ids to copy, numbers, names of tables and statuses.
WHOLE = frozenset({"id", "job", "backup", "run", "table", "status", "line", "part", "reason"})
NUMERIC = frozenset(
    {"size", "rows", "read", "inserted", "rejected", "hired", "Q1", "Q2", "Q3", "Q4", "deliveries"}
)
PIPE_WIDTH = 160
SHORT_ID = 8  # the characters of an id shown in tables; any unique prefix of 6+ is accepted


def interactive() -> bool:
    """Whether a person is watching: stdout and stderr are both terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


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


def _line(console: Console, message: str) -> None:
    # Wrapped at word boundaries to a terminal's width; whole on one line into a pipe.
    console.print(message, markup=False, soft_wrap=not console.is_terminal)


def note(message: str) -> None:
    """A line for people, on stderr."""
    _line(stderr, message)


def say(message: str) -> None:
    """A final line, on stdout."""
    _line(stdout(), message)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def short_id(value: Any) -> str:
    """The first characters of an id, as tables show it."""
    return value[:SHORT_ID] if isinstance(value, str) else cell(value)


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


def short_time(value: Any, *, seconds: bool = True) -> str:
    """An ISO timestamp from the API as ``YYYY-MM-DD HH:MM[:SS]`` (UTC, as the API gives it)."""
    if not isinstance(value, str):
        return cell(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def size(n: Any) -> str:
    if not isinstance(n, int):
        return cell(n)
    amount = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    return str(n)  # pragma: no cover


GAP = 2  # between columns: the box's blank divider and one cell of padding


def _whole(name: str) -> bool:
    return name in WHOLE or name in NUMERIC


def _widths(columns: Sequence[str], rows: list[list[str]]) -> list[tuple[int, int]]:
    """Each column's narrowest and widest width: a whole column is as wide as its widest
    line; another may wrap at spaces, so it needs its longest word."""
    ranges = []
    for i, name in enumerate(columns):
        values = [name, *(row[i] for row in rows)]
        widest = max(cell_len(line) for v in values for line in v.splitlines() or [""])
        words = [w for v in values for w in v.split()] or [""]
        ranges.append((widest if _whole(name) else max(cell_len(w) for w in words), widest))
    return ranges


def _allotted(ranges: list[tuple[int, int]], room: int) -> list[int]:
    """Widths within ``room``: every column its widest if that fits, else the wrapping ones
    share what the whole ones leave, each at least its narrowest."""
    if sum(high for _, high in ranges) <= room:
        return [high for _, high in ranges]
    spare = max(0, room - sum(low for low, _ in ranges))
    wants = [high - low for low, high in ranges]
    total = sum(wants) or 1
    return [low + spare * want // total for (low, _), want in zip(ranges, wants, strict=True)]


def _build(
    columns: Sequence[str], rows: list[list[str]], title: str | None, widths: list[int]
) -> Table:
    out = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for name, width in zip(columns, widths, strict=True):
        whole = _whole(name)
        out.add_column(
            name,
            justify="right" if name in NUMERIC else "left",
            overflow="fold",
            no_wrap=whole,
            width=None if whole else width,
        )
    for row in rows:
        out.add_row(*row)
    return out


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    optional: Sequence[str] = (),
) -> None:
    """A table on stdout that fits the terminal: long text wraps at spaces, ids and numbers stay
    whole, and the ``optional`` columns are left out, in that order, while it would not fit."""
    text = [[v if isinstance(v, str) else cell(v) for v in row] for row in rows]
    if not text:
        return
    console = stdout()
    shown = list(columns)
    for name in optional:
        room = console.width - GAP * (len(shown) - 1)
        if sum(low for low, _ in _widths(shown, text)) <= room:
            break
        keep = [i for i, c in enumerate(shown) if c != name]
        shown = [shown[i] for i in keep]
        text = [[row[i] for i in keep] for row in text]
    room = console.width - GAP * (len(shown) - 1)
    console.print(_build(shown, text, title, _allotted(_widths(shown, text), room)))


def fields(data: Mapping[str, Any], *, title: str | None = None) -> None:
    """One object as a two-column table of its fields."""
    out = Table(title=title, title_justify="left", show_header=False, box=box.SIMPLE)
    out.add_column("field", style="bold", no_wrap=True)
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
