"""``ingest report``: the two reports, as a table, JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.client import Client, options_of
from cli.output import note, print_json, table

app = typer.Typer(
    help="The reports: hires by quarter, departments above the mean.", no_args_is_help=True
)

Year = Annotated[int, typer.Option("--year", "-y", min=1, max=9998, help="Calendar year (UTC).")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print the report as CSV.")]


def _csv(client: Client, path: str, year: int) -> None:
    with client.stream("GET", path, params={"year": year}, headers={"Accept": "text/csv"}) as r:
        out = typer.get_binary_stream("stdout")
        for chunk in r.iter_bytes():
            out.write(chunk)
        out.flush()


def _fetch(ctx: typer.Context, name: str, year: int, as_csv: bool) -> dict[str, Any] | None:
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


@app.command("hires-by-quarter")
def hires_by_quarter(ctx: typer.Context, year: Year, as_csv: AsCsv = False) -> None:
    """Hires per department and job in each quarter of YEAR."""
    report = _fetch(ctx, "hires-by-quarter", year, as_csv)
    if report is not None:
        columns = ["department", "job", "Q1", "Q2", "Q3", "Q4"]
        table(columns, _rows(report, columns), title=f"Hires by quarter, {year}")


@app.command("departments-above-mean")
def departments_above_mean(ctx: typer.Context, year: Year, as_csv: AsCsv = False) -> None:
    """Departments that hired more than the mean of hires per department in YEAR."""
    report = _fetch(ctx, "departments-above-mean", year, as_csv)
    if report is not None:
        columns = ["id", "department", "hired"]
        table(columns, _rows(report, columns), title=f"Departments above the mean, {year}")
        note(f"mean hires per department in {year}: {report['mean']:.2f}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="report")
