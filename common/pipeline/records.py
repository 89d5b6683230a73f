"""Where CSV records end, with or without quoted fields that span lines.

Without ``allow_quoted_newlines`` every newline ends a record. With it, a newline ends a record
only when the bytes before it, counted from a record's start, hold an even number of double
quotes: in RFC 4180 a quote opens or closes a quoted field and a quote inside one is doubled
(``""``), so an odd count means a quoted field is still open. Every scan is a handful of C-level
``find``/``count`` calls that jump from quote to quote; bytes without quotes cost a newline
search and one count of quotes.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

Bytes = bytes | bytearray
_NL = b"\n"
_QUOTE = b'"'
_LINE_BREAK = pa.scalar("\n", pa.large_string())


@dataclass(frozen=True)
class RecordEnds:
    """Finds the newlines that end records in a buffer that starts at a record's start."""

    quoted_newlines: bool

    def first(self, buf: Bytes, start: int = 0, inside: bool = False) -> int:
        """Index of the first newline at or after ``start`` that ends a record, or -1.

        ``inside`` says whether a quoted field is open at ``start``.
        """
        if not self.quoted_newlines:
            return buf.find(_NL, start)
        pos, odd = start, int(inside)
        while True:
            newline = buf.find(_NL, pos)
            if newline < 0:
                return -1
            odd ^= buf.count(_QUOTE, pos, newline) & 1
            if not odd:
                return newline
            # Every newline up to the next quote is inside the open field.
            closing = buf.find(_QUOTE, newline)
            if closing < 0:
                return -1
            pos, odd = closing + 1, 0

    def last_before(self, buf: Bytes, stop: int) -> int:
        """Index of the last newline before ``stop`` that ends a record, or -1."""
        newline = buf.rfind(_NL, 0, stop)
        if not self.quoted_newlines or newline < 0:
            return newline
        odd = buf.count(_QUOTE, 0, newline) & 1
        while odd:
            # Go back before the quote that opened the field this newline is in.
            opening = buf.rfind(_QUOTE, 0, newline)
            earlier = buf.rfind(_NL, 0, opening)
            if earlier < 0:
                return -1
            odd ^= buf.count(_QUOTE, earlier, newline) & 1
            newline = earlier
        return newline

    def open_after(self, data: Bytes, inside: bool, stop: int | None = None) -> bool:
        """Whether a quoted field is open after ``data[:stop]``, given whether one was open
        before it."""
        return self.quoted_newlines and inside ^ bool(data.count(_QUOTE, 0, stop) & 1)


def join_records(
    lines: pa.Array, numbers: pa.Array, bad: list[int]
) -> tuple[pa.Array, pa.Array, list[int]]:
    """Join ``lines`` (without their newline) into records by quote parity.

    Returns each record's text (its lines joined by ``\\n``), the number of its first line, and
    the indexes of the records holding a line in ``bad``.
    """
    odd = pc.bit_wise_and(pc.count_substring(lines, '"'), 1)
    open_after = pc.bit_wise_and(pc.cumulative_sum(odd), 1)
    # A line starts a record when no quoted field is open after the line before it.
    starts = pc.equal(pa.concat_arrays([pa.array([0], open_after.type), open_after[:-1]]), 0)
    if pc.all(starts).as_py():
        return lines, numbers, bad
    first = pc.indices_nonzero(starts)
    offsets = pa.concat_arrays([pc.cast(first, pa.int32()), pa.array([len(lines)], pa.int32())])
    records = pc.binary_join(pa.ListArray.from_arrays(offsets, lines), _LINE_BREAK)
    first_of = first.to_pylist()
    return records, numbers.filter(starts), sorted({bisect_right(first_of, i) - 1 for i in bad})
