"""The AVRO schema of each table's backup, per schema version, and the check of a file's schema.

A backup file carries its writer schema in its header. Restore accepts a file whose schema is,
field for field and type for type, the one this code wrote for that table at one of the versions
in :data:`ACCEPTED_VERSIONS`; anything else (another table, another layout) is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from common.backup.errors import BackupInvalid
from common.model.catalog import Column, ColumnType, TableSpec

SCHEMA_VERSION = 1
# Versions this code can restore; an older layout would get its own entry (and a converter).
ACCEPTED_VERSIONS = frozenset({1})
NAMESPACE = "ingest.backup"
# Keys of the AVRO file header that say what the file holds, besides the schema itself.
META_TABLE = "ingest.table"
META_VERSION = "ingest.schema_version"

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)

_TYPES: dict[ColumnType, Any] = {
    ColumnType.ID: "long",
    ColumnType.INTEGER: "long",
    ColumnType.FLOAT: "double",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.TEXT: "string",
    ColumnType.DATE: {"type": "int", "logicalType": "date"},
    ColumnType.TIMESTAMP: {"type": "long", "logicalType": "timestamp-micros"},
}


def _field(column: Column) -> dict[str, Any]:
    """A column's AVRO field: its type, as a union with null (default null) when optional."""
    kind = _TYPES.get(column.type)
    if column.type is ColumnType.DECIMAL:
        kind = {
            "type": "bytes",
            "logicalType": "decimal",
            "precision": column.precision,
            "scale": column.scale,
        }
    if column.required:
        return {"name": column.name, "type": kind}
    return {"name": column.name, "type": ["null", kind], "default": None}


def table_schema(spec: TableSpec, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The AVRO record schema of ``spec``'s rows at ``version``."""
    if version not in ACCEPTED_VERSIONS:
        raise BackupInvalid(f"backup schema version {version} is not one this service knows")
    return {
        "type": "record",
        "name": spec.name,
        "namespace": f"{NAMESPACE}.v{version}",
        "doc": f"One row of the {spec.name} table (backup schema version {version}).",
        "fields": [_field(c) for c in spec.columns],
    }


def to_micros(value: datetime) -> int:
    """A naive UTC datetime (as the database returns it) as microseconds since the epoch."""
    return (value.replace(tzinfo=None) - _EPOCH) // _MICROSECOND


def _shape(schema: Any) -> tuple[str, list[tuple[str, str]]]:
    """(full name, [(field, type)]) of a record schema, ignoring docs and other attributes."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise BackupInvalid("the backup's AVRO schema is not a record")
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    full = name if "." in name or not namespace else f"{namespace}.{name}"
    fields = [
        (str(field.get("name")), _kind(field.get("type"))) for field in schema.get("fields", [])
    ]
    return full, fields


def _kind(kind: Any) -> str:
    """A field's type in a few words: ``long/timestamp-micros``, ``bytes/decimal(12,4)``,
    ``null|double``."""
    if isinstance(kind, list):
        return "|".join(_kind(k) for k in kind)
    if not isinstance(kind, Mapping):
        return str(kind)
    logical = kind.get("logicalType", "")
    if logical == "decimal":
        logical += f"({kind.get('precision')},{kind.get('scale', 0)})"
    return f"{kind.get('type')}/{logical}"


def check_file_schema(
    spec: TableSpec, header: Mapping[str, Any], expected_version: int | None = None
) -> int:
    """Refuse a file whose header does not describe ``spec``'s rows; return its version."""
    try:
        raw = header["avro.schema"]
        writer_schema = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        version = int(_text(header.get(META_VERSION, str(SCHEMA_VERSION))))
    except (KeyError, ValueError) as exc:
        raise BackupInvalid(f"the backup file has no readable AVRO schema: {exc}") from None
    if expected_version is not None and version != expected_version:
        raise BackupInvalid(
            f"the backup file says schema version {version}, its record {expected_version}"
        )
    if version not in ACCEPTED_VERSIONS:
        known = ", ".join(str(v) for v in sorted(ACCEPTED_VERSIONS))
        raise BackupInvalid(
            f"backup schema version {version} is not one this service reads ({known})"
        )
    table = _text(header.get(META_TABLE, spec.name))
    found, wanted = _shape(writer_schema), _shape(table_schema(spec, version))
    if table != spec.name or found != wanted:
        raise BackupInvalid(
            f"the backup file holds {found[0]} rows with fields "
            f"{', '.join(f'{n}:{t}' for n, t in found[1])}, not {spec.name} rows "
            f"({', '.join(f'{n}:{t}' for n, t in wanted[1])})"
        )
    return version


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
