"""``ingest report``: the two reports, as a table, JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.client import Client, options_of
from cli.command import Command, group
from cli.output import note, print_json, table

app = group(help="The reports: hires by quarter, departments above the mean.")

Year = Annotated[
    int | None,
    typer.Option(
        "--year",
        "-y",
        min=1,
        max=9998,
        metavar="YEAR",
        help="Calendar year (UTC); default: the latest year with hires.",
        show_default=False,
    ),
]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print the report as CSV.")]


def _csv(client: Client, path: str, year: int | None) -> None:
    with client.stream("GET", path, params={"year": year}, headers={"Accept": "text/csv"}) as r:
        out = typer.get_binary_stream("stdout")
        for chunk in r.iter_bytes():
            out.write(chunk)
        out.flush()


def _fetch(ctx: typer.Context, name: str, year: int | None, as_csv: bool) -> dict[str, Any] | None:
    """The report as JSON, or None once it was printed (as CSV or as JSON)."""
    options = options_of(ctx)
    path = f"/reports/{name}"
    with Client(options) as client:
        if as_csv:
            _csv(client, path, year)
            return None
        report: dict[str, Any] = client.json("GET", path, params={"year": year})
    if options.json:
        print_json(report)
        return None
    return report


def _rows(report: dict[str, Any], columns: list[str]) -> list[list[Any]]:
    return [[r[c] for c in columns] for r in report["rows"]]


@app.command("hires-by-quarter", cls=Command)
def hires_by_quarter(ctx: typer.Context, year: Year = None, as_csv: AsCsv = False) -> None:
    """Hires per department and job in each quarter of a year.

    Rows are ordered by department, then job name (see the README for the order).
    """
    report = _fetch(ctx, "hires-by-quarter", year, as_csv)
    if report is not None:
        columns = ["department", "job", "Q1", "Q2", "Q3", "Q4"]
        table(columns, _rows(report, columns), title=f"Hires by quarter, {report['year']}")
        if not report["rows"]:
            note(f"no hires in {report['year']}")


@app.command("departments-above-mean", cls=Command)
def departments_above_mean(ctx: typer.Context, year: Year = None, as_csv: AsCsv = False) -> None:
    """Departments that hired more than the mean of hires per department in a year."""
    report = _fetch(ctx, "departments-above-mean", year, as_csv)
    if report is not None:
        columns = ["id", "department", "hired"]
        year_shown = report["year"]
        table(columns, _rows(report, columns), title=f"Departments above the mean, {year_shown}")
        note(f"mean hires per department in {year_shown}: {report['mean']:.2f}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="report")
