"""The answers of ``GET /tables``: each declared table with its columns, as the catalog says."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.model.catalog import Column, ColumnType, TableSpec, Timezone


class ColumnOut(BaseModel):
    name: str
    type: ColumnType
    required: bool
    null_marker: str | None = Field(
        description="The field that means no value in an optional column ('' is the empty "
        "field); null for a required column."
    )
    unique: bool
    references: str | None = Field(description="The table whose ids the column holds.")
    max_length: int | None = Field(description="Characters at most, for a text column.")
    precision: int | None = Field(description="Digits in all, for a decimal column.")
    scale: int | None = Field(description="Digits after the point, for a decimal column.")
    timezone: Timezone | None = Field(
        description="For a timestamp column: whether a value without an offset is rejected "
        "(required) or taken as UTC (assume_utc)."
    )

    @classmethod
    def of(cls, column: Column) -> ColumnOut:
        kind = column.type
        return cls(
            name=column.name,
            type=kind,
            required=column.required,
            null_marker=None if column.required else column.null_marker,
            unique=column.unique,
            references=column.references,
            max_length=column.max_length if kind is ColumnType.TEXT else None,
            precision=column.precision if kind is ColumnType.DECIMAL else None,
            scale=column.scale if kind is ColumnType.DECIMAL else None,
            timezone=column.timezone if kind is ColumnType.TIMESTAMP else None,
        )


class TableOut(BaseModel):
    name: str
    columns: list[ColumnOut] = Field(description="In the order of a CSV line's fields.")
    primary_key: str
    delimiter: str = Field(description="The character between a CSV line's fields.")
    skip_leading_rows: int = Field(
        description="Lines at the start of every file of this table that are not rows."
    )
    rows: int = Field(description="Rows the table holds now.")

    @classmethod
    def of(cls, spec: TableSpec, rows: int) -> TableOut:
        return cls(
            name=spec.name,
            columns=[ColumnOut.of(c) for c in spec.columns],
            primary_key=spec.key.name,
            delimiter=spec.delimiter,
            skip_leading_rows=spec.skip_leading_rows,
            rows=rows,
        )


class TablesOut(BaseModel):
    tables: list[TableOut] = Field(
        description="The declared tables, each after the tables it references (the order "
        "multi-file uploads load in)."
    )
    reports: bool = Field(
        description="Whether the reports (/reports/...) are served: the catalog declares the "
        "departments, jobs and hired_employees they read."
    )
