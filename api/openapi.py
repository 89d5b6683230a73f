"""What the catalog adds to the OpenAPI document: the declared tables as the values of every
``table`` parameter, a row schema per table for batches, and a file field per table for
multi-file uploads.

The routes themselves stay generic (a batch's rows are parsed as objects and validated row by
row, so a row of the wrong shape is a rejection in the answer, not a refused request); the
document says what a valid row of each table is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from common.model.catalog import Catalog, Column, ColumnType, TableSpec, Timezone

MAX_ID = 2**63 - 1
BATCH_PATH = "/tables/{table}/rows"
MANY_FILES_PATH = "/uploads"


def describe(catalog: Catalog) -> str:
    """The document's description: what the service does with this catalog's tables."""
    tables = ", ".join(f"`{name}`" for name in catalog.load_order)
    reports = "read the reports, " if catalog.has_reports else ""
    return (
        f"Upload CSV files for the declared tables ({tables}); workers validate every row, "
        "insert the valid ones and keep every rejected one with its reason. Insert JSON "
        f"batches, {reports}back up and restore tables, and handle dead letters. "
        "`GET /tables` describes each table's columns."
    )


def row_schema_name(table: str) -> str:
    return f"Row.{table}"


def row_schema(spec: TableSpec) -> dict[str, Any]:
    """The JSON schema of a valid row of ``spec`` in a batch."""
    return {
        "title": row_schema_name(spec.name),
        "type": "object",
        "description": f"A row of {spec.name}: its columns by name; a column left out is null.",
        "properties": {c.name: _column_schema(c) for c in spec.columns},
        "required": [c.name for c in spec.columns if c.required],
        "additionalProperties": False,
    }


def _column_schema(column: Column) -> dict[str, Any]:
    value, about = _value_schema(column)
    if column.references:
        about.append(f"the id of a row of {column.references}")
    if column.unique:
        about.append("no two rows hold the same value")
    schema: dict[str, Any] = value if column.required else {"anyOf": [value, {"type": "null"}]}
    if about:
        said = "; ".join(about)
        schema["description"] = f"{said[0].upper()}{said[1:]}."
    return schema


def _value_schema(column: Column) -> tuple[dict[str, Any], list[str]]:
    match column.type:
        case ColumnType.ID:
            return {"type": "integer", "minimum": 1, "maximum": MAX_ID}, []
        case ColumnType.INTEGER:
            return {"type": "integer", "minimum": -MAX_ID - 1, "maximum": MAX_ID}, []
        case ColumnType.DECIMAL:
            about = (
                f"decimal({column.precision}, {column.scale}): at most "
                f"{column.precision - column.scale} digits before the point and "
                f"{column.scale} after; as a string, every digit is kept"
            )
            return {"anyOf": [{"type": "number"}, {"type": "string"}]}, [about]
        case ColumnType.FLOAT:
            return {"type": "number"}, []
        case ColumnType.BOOLEAN:
            return {"type": "boolean"}, []
        case ColumnType.TEXT:
            return {"type": "string", "maxLength": column.max_length}, []
        case ColumnType.DATE:
            return {"type": "string", "format": "date"}, []
        case ColumnType.TIMESTAMP:
            about = (
                "without an offset it is taken as UTC"
                if column.timezone is Timezone.ASSUME_UTC
                else "with its offset (Z for UTC)"
            )
            return {"type": "string", "format": "date-time"}, [about]
    raise AssertionError(column.type)


def file_field(spec: TableSpec) -> dict[str, Any]:
    """The multipart file field of ``spec`` in a multi-file upload."""
    layout = f"the fields {', '.join(spec.column_names)} separated by {spec.delimiter!r}"
    skip = spec.skip_leading_rows
    skipped = {0: "", 1: "; its first line is skipped"}.get(
        skip, f"; its first {skip} lines are skipped"
    )
    return {
        "type": "string",
        "format": "binary",
        "description": f"A CSV file for {spec.name}: {layout}{skipped}.",
    }


def add_catalog(document: dict[str, Any], catalog: Catalog) -> None:
    """Write ``catalog``'s tables into ``document`` (FastAPI's, for the generic routes)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for spec in catalog.specs:
        schemas[row_schema_name(spec.name)] = row_schema(spec)
    rows = schemas["BatchIn"]["properties"]["rows"]
    refs = [f"#/components/schemas/{row_schema_name(n)}" for n in catalog.load_order]
    rows["items"] = {"anyOf": [{"$ref": ref} for ref in refs]}
    rows["description"] = (
        "The rows, each an object of the columns of the table in the path (its schema is "
        "Row.<table>). A row that breaks the table's rules is rejected alone and listed under "
        "`rejected` in the answer."
    )
    files = document["paths"][MANY_FILES_PATH]["post"]["requestBody"]["content"]
    files["multipart/form-data"]["schema"]["properties"] = {
        spec.name: file_field(spec) for spec in catalog.specs
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter["name"] == "table":
                    _declared_tables(parameter["schema"], catalog)


def _declared_tables(schema: dict[str, Any], catalog: Catalog) -> None:
    """A ``table`` parameter's schema (``str`` or ``str | None``) limited to the tables."""
    names = list(catalog.load_order)
    for choice in schema.get("anyOf", [schema]):
        if choice.get("type") == "string":
            choice["enum"] = names


def install(app: FastAPI, catalog: Catalog) -> None:
    """Make ``app`` describe ``catalog``'s tables in its OpenAPI document."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI keeps it as app.openapi_schema
            add_catalog(document, catalog)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
