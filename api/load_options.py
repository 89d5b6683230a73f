"""The load options as query parameters, shared by the upload routes (see
:mod:`common.model.options` for what each means)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from common.model.options import LoadOptions, WriteMode


def load_options(
    atomic: Annotated[
        bool,
        Query(
            description="Nothing of the file is visible until all of it is validated; then "
            "every valid row appears in one transaction, or none does."
        ),
    ] = False,
    write: Annotated[
        WriteMode,
        Query(
            description="append: add the rows; replace: the table becomes exactly this file's "
            "valid rows; empty: load only into an empty table."
        ),
    ] = WriteMode.APPEND,
    max_bad_records: Annotated[
        int | None,
        Query(ge=0, le=2**62, description="Fail the job when more rows than this are rejected."),
    ] = None,
    max_bad_percent: Annotated[
        float | None,
        Query(
            ge=0,
            le=100,
            description="Fail the job when more than this % of the rows read are rejected.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        Query(
            description="Validate the whole file against today's tables and store the "
            "rejections; write nothing to the table."
        ),
    ] = False,
    skip_leading_rows: Annotated[
        int | None,
        Query(
            ge=0,
            le=1000,
            description="Ignore the first N lines (line numbers still count them); by default "
            "the table's own skip_leading_rows from the catalog.",
        ),
    ] = None,
    allow_quoted_newlines: Annotated[
        bool,
        Query(
            description="Quoted fields may span lines (RFC 4180); a rejection's line is its "
            "record's first line, and line numbers still count every line."
        ),
    ] = False,
) -> LoadOptions:
    return LoadOptions(
        atomic=atomic,
        write=write,
        max_bad_records=max_bad_records,
        max_bad_percent=max_bad_percent,
        dry_run=dry_run,
        skip_leading_rows=skip_leading_rows,
        allow_quoted_newlines=allow_quoted_newlines,
    )


Options = Annotated[LoadOptions, Depends(load_options)]
