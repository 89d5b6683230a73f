"""Progress bars on stderr, laid out for the terminal's width; none unless a person watches."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from cli.output import interactive, stderr

WIDE = 80  # at this width and more, speeds and times join the bars
LABEL_WIDTH = 22  # longest label shown whole; longer ones end in an ellipsis


def _label() -> TextColumn:
    return TextColumn(
        "{task.description}",
        table_column=Column(no_wrap=True, overflow="ellipsis", max_width=LABEL_WIDTH),
    )


def _whole() -> Column:
    # Figures never wrap inside the bar's line: a narrow terminal gets a shorter bar instead.
    return Column(no_wrap=True)


def _progress(columns: list[ProgressColumn], quiet: bool) -> Progress:
    return Progress(*columns, console=stderr, disable=quiet or not interactive(), expand=True)


def upload_bar(*, quiet: bool = False) -> Progress:
    """Bytes sent: ``name ━━━━ 1.2/3.4 MB`` and, when there is room, speed and time left."""
    columns: list[ProgressColumn] = [
        _label(),
        BarColumn(bar_width=None),
        DownloadColumn(table_column=_whole()),
    ]
    if stderr.width >= WIDE:
        columns += [
            TransferSpeedColumn(table_column=_whole()),
            TimeRemainingColumn(compact=True, table_column=_whole()),
        ]
    return _progress(columns, quiet)


def jobs_bar(*, quiet: bool = False) -> Progress:
    """One line per job: ``table ━━━━ 45% 12,345 rows`` and, when there is room, the time."""
    columns: list[ProgressColumn] = [
        _label(),
        BarColumn(bar_width=None),
        TaskProgressColumn(table_column=_whole()),
        TextColumn("{task.fields[rows]}", table_column=_whole()),
    ]
    if stderr.width >= WIDE:
        columns.append(TimeElapsedColumn(table_column=_whole()))
    return _progress(columns, quiet)
