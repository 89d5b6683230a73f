"""The load options of ``ingest upload`` and ``ingest upload-all``, sent as the query parameters
of the upload (see the README's "Load options" for what each means)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated

import typer

from cli.client import Params
from cli.output import EXIT_USAGE, fail
from common.model.options import LoadOptions, WriteMode

# The API's own limits, so that a value it would refuse is refused before a file is sent.
MAX_LEADING_ROWS = 1000

MaxBadRecords = Annotated[
    int | None,
    typer.Option(
        "--max-bad-records",
        min=0,
        metavar="N",
        help="Fail the job, writing nothing, if more than N rows are rejected.",
        show_default=False,
    ),
]
MaxBadPercent = Annotated[
    float | None,
    typer.Option(
        "--max-bad-percent",
        min=0,
        max=100,
        metavar="P",
        help="Fail the job, writing nothing, if more than P % of the rows are rejected.",
        show_default=False,
    ),
]
Atomic = Annotated[
    bool,
    typer.Option(
        "--atomic",
        help="All or nothing: the valid rows appear at once when the whole file is checked.",
    ),
]
Write = Annotated[
    WriteMode,
    typer.Option(
        "--write",
        help="append: add the rows; replace: the table becomes the file's rows; "
        "empty: load only into an empty table.",
    ),
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Check every row against the tables and keep the rejections; write nothing.",
    ),
]
SkipLeadingRows = Annotated[
    int | None,
    typer.Option(
        "--skip-leading-rows",
        min=0,
        max=MAX_LEADING_ROWS,
        metavar="N",
        help="Ignore the first N lines (a header); line numbers still count them. "
        "By default, the table's own skip_leading_rows from the catalog.",
    ),
]
AllowQuotedNewlines = Annotated[
    bool,
    typer.Option(
        "--allow-quoted-newlines",
        help="Quoted fields may span lines; the file is then loaded as one part.",
    ),
]


@dataclass(frozen=True)
class LoadFlags:
    """The load options as given on the command line."""

    max_bad_records: int | None = None
    max_bad_percent: float | None = None
    atomic: bool = False
    write: WriteMode = WriteMode.APPEND
    dry_run: bool = False
    skip_leading_rows: int | None = None
    allow_quoted_newlines: bool = False

    def params(self) -> Params:
        """The query parameters of the options that differ from the default."""
        return LoadOptions(**asdict(self)).changed()

    def refuse_with_update(self) -> None:
        """Exit with a usage error if these options cannot go with ``--on-conflict update``."""
        if self.write is WriteMode.REPLACE:
            fail(
                "--write replace and --on-conflict update cannot go together: a replacing load "
                "makes the table exactly the file's rows, so there is nothing to update; "
                "leave one of them out",
                EXIT_USAGE,
            )
