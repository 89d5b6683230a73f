"""CSV answers that a spreadsheet opens without running anything.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is taken for a
formula by spreadsheet programs; such cells are written with a leading ``'`` (OWASP's advice
against CSV injection), unless they are plain numbers such as ``-5`` or ``+1.5e3``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class _Text(Protocol):
    def write(self, text: str, /) -> Any: ...


def neutralised(value: Any) -> Any:
    """``value``, with a leading ``'`` if a spreadsheet would read it as a formula."""
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_STARTS)
        and not _PLAIN_NUMBER.match(value)
    ):
        return f"'{value}"
    return value


class SafeWriter:
    """``csv.writer`` with every cell :func:`neutralised`."""

    def __init__(self, out: _Text) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([neutralised(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
