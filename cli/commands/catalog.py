"""``ingest catalog``: check a catalog file before the service starts with it.

These commands do not talk to the API: ``check`` reads the file alone, and ``diff`` reads the
database the service would start on (``DATABASE_URL`` or the other settings, as the service
reads them), changing nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.client import options_of
from cli.command import Command, group
from cli.output import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, fail, print_json, say

if TYPE_CHECKING:
    from common.model.catalog import Catalog
    from common.sql.catalog_sync import Difference

app = group(help="Check a catalog file before the service starts with it.")


def _load(path: Path | None) -> Catalog:
    """The catalog in ``path`` (the shipped one when None), or exit 2 naming every mistake."""
    from common.model.catalog_file import CatalogError, load_catalog

    try:
        return load_catalog(path)
    except CatalogError as exc:
        for problem in exc.problems:
            typer.echo(f"{exc.source}: {problem}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


@app.command("check", cls=Command)
def check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The catalog file (TOML).")],
) -> None:
    """Check a catalog file without starting anything.

    Prints its tables in the order they load; every mistake is one line on stderr (exit 2).
    """
    catalog = _load(file)
    if options_of(ctx).json:
        print_json({"tables": list(catalog.load_order), "reports": catalog.has_reports})
        return
    columns = sum(len(spec.columns) for spec in catalog.specs)
    say(
        f"{file}: {len(catalog.specs)} table(s), {columns} columns; "
        f"loaded parents first: {', '.join(catalog.load_order)}"
    )
    if not catalog.has_reports:
        say("no reports: they read departments, jobs and hired_employees, not declared here")


def _differences(catalog: Catalog, url: str) -> list[Difference]:
    """How the database at ``url`` differs from ``catalog``, without changing it."""
    from sqlalchemy.engine import make_url

    from common.errors import IngestError
    from common.sql.catalog_sync import differences
    from common.sql.db import Database

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        url = "sqlite://"  # no database yet: compare with an empty one, creating no file
    db = Database.from_url(url)
    try:
        with db.read() as conn:
            return differences(conn, catalog)
    except IngestError as exc:
        fail(f"cannot read the database: {exc}", EXIT_UNAVAILABLE)
    finally:
        db.dispose()


@app.command("diff", cls=Command)
def diff(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(
            metavar="FILE",
            help="The catalog file (TOML); default: CATALOG_FILE, else the shipped one.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """What starting the service with a catalog would change in its database.

    Changes that only add (a new table, a new optional column, a longer text, a new unique
    column) are applied at start; the others stop the start, and make this exit 1.
    """
    from common.settings import load_settings

    settings = load_settings()  # a configuration the service would refuse exits 2, saying why
    catalog = _load(file if file is not None else settings.catalog_file)
    found = _differences(catalog, settings.sqlalchemy_url)
    applied = [d.sentence for d in found if d.additive]
    refused = [d.sentence for d in found if not d.additive]
    if options_of(ctx).json:
        print_json({"catalog": catalog.source, "apply": applied, "refuse": refused})
    elif not found:
        say(f"the database matches {catalog.source}: starting the service changes nothing")
    else:
        for sentence in applied:
            say(f"apply: {sentence}")
        for sentence in refused:
            say(f"refuse: {sentence}")
        if refused:
            say(
                "the service would not start: change the catalog back, or migrate the table "
                "by hand (docs/runbooks.md)"
            )
    if refused:
        raise typer.Exit(EXIT_FAILED)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="catalog")
