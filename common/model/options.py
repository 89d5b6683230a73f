"""How a file is loaded: the options of an upload, modelled on BigQuery load jobs and
Snowflake's COPY.

By default a file loads block by block and its bad rows are stored (Snowflake's
``ON_ERROR = CONTINUE``). A *staged* load instead writes every valid row to a staging table
first and publishes them all in one transaction once the whole file is validated: asked for
with ``atomic``, and implied by a bad-row threshold, by ``write=replace`` or ``write=empty``,
and by a dry run (which validates and publishes nothing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import orjson

from common.model.catalog import TableSpec


class WriteMode(StrEnum):
    APPEND = "append"  # add the file's rows to the table
    REPLACE = "replace"  # the table becomes exactly the file's valid rows
    EMPTY = "empty"  # load only into an empty table


@dataclass(frozen=True)
class LoadOptions:
    atomic: bool = False
    write: WriteMode = WriteMode.APPEND
    max_bad_records: int | None = None
    max_bad_percent: float | None = None
    dry_run: bool = False
    # None: the table's own skip_leading_rows (0 unless its catalog says otherwise).
    skip_leading_rows: int | None = None
    allow_quoted_newlines: bool = False

    def leading_rows(self, spec: TableSpec) -> int:
        """How many of the file's first lines are neither read nor rejected."""
        if self.skip_leading_rows is None:
            return spec.skip_leading_rows
        return self.skip_leading_rows

    @property
    def staged(self) -> bool:
        """Whether rows go through the staging table and are published at once."""
        return (
            self.atomic
            or self.dry_run
            or self.write is not WriteMode.APPEND
            or self.max_bad_records is not None
            or self.max_bad_percent is not None
        )

    def exceeded(self, read: int, rejected: int) -> str | None:
        """Why ``rejected`` of ``read`` rows is more than the thresholds allow, if it is."""
        if self.max_bad_records is not None and rejected > self.max_bad_records:
            return (
                f"{rejected} rows were rejected, more than max_bad_records={self.max_bad_records}"
            )
        if (
            self.max_bad_percent is not None
            and read
            and rejected * 100 > self.max_bad_percent * read
        ):
            share = rejected * 100 / read
            return (
                f"{share:.2f}% of the {read} rows read were rejected, more than "
                f"max_bad_percent={self.max_bad_percent:g}"
            )
        return None

    def changed(self) -> dict[str, Any]:
        """The options that differ from the default, by name (the query parameters' names)."""
        return {
            k: v.value if isinstance(v, WriteMode) else v
            for k, v in asdict(self).items()
            if v != _DEFAULTS[k]
        }

    def as_json(self) -> str:
        return orjson.dumps(self.changed()).decode()

    @classmethod
    def from_json(cls, text: str | None) -> LoadOptions:
        if not text:
            return cls()
        data: dict[str, Any] = orjson.loads(text)
        if "write" in data:
            data["write"] = WriteMode(data["write"])
        return cls(**data)

    def fingerprint(self) -> str:
        """What makes two uploads of the same bytes different loads (empty for the default)."""
        return "" if self == LoadOptions() else self.as_json()


_DEFAULTS = asdict(LoadOptions())
