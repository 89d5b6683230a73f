"""Cut a byte stream into blocks of whole records, so each block can be parsed on its own.

A record is one line, or with ``allow_quoted_newlines`` as many lines as its quoted fields span
(see :mod:`common.pipeline.records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from common.pipeline.records import RecordEnds

# No valid row comes near this: five fields of at most 255 characters each.
MAX_LINE_BYTES = 64 * 1024
_PREVIEW_BYTES = 200
# Lines per block at most: a block of tiny lines (junk) would otherwise turn one block's bytes
# into a million rejections held at once. Real rows are tens of bytes, so this rarely binds.
MAX_BLOCK_LINES = 65_536


@dataclass(frozen=True)
class Block:
    """Whole records ``data`` starting at byte ``offset``; ``end`` is the offset after them;
    ``lines`` counts the physical lines they span.

    ``oversized`` marks a single record longer than :data:`MAX_LINE_BYTES`: ``data`` then holds
    only its first bytes, for the rejection, and the record was skipped without being held.
    """

    offset: int
    end: int
    data: bytes
    lines: int
    oversized: bool = False


def _lines_block(offset: int, data: bytes) -> Block:
    ends_open = bool(data) and not data.endswith(b"\n")
    return Block(offset, offset + len(data), data, data.count(b"\n") + ends_open)


def _cut(buf: bytearray, block_bytes: int, max_lines: int, ends: RecordEnds) -> int:
    """Where the next block ends in ``buf``: after the last record within ``block_bytes`` (or
    the first one past it, for a longer record), and at most ``max_lines`` lines in unless its
    first record is longer; -1 when ``buf`` holds no whole record."""
    cut = ends.last_before(buf, block_bytes)
    if cut < 0:
        cut = ends.first(buf)
    if cut < 0:
        return -1
    if buf.count(b"\n", 0, cut + 1) > max_lines:
        limit = -1
        for _ in range(max_lines):
            limit = buf.find(b"\n", limit + 1)
        cut = max(ends.last_before(buf, limit + 1), ends.first(buf))
    return cut


@dataclass
class _Skipping:
    """A record longer than :data:`MAX_LINE_BYTES`, skipped until it ends."""

    offset: int
    end: int
    preview: bytes
    newlines: int
    inside: bool  # whether a quoted field is open at ``end``
    in_line: bool = True  # whether the bytes skipped so far end inside a line

    def skip(self, data: bytes | bytearray, ends: RecordEnds) -> None:
        if data:
            self.end += len(data)
            self.newlines += data.count(b"\n")
            self.inside = ends.open_after(data, self.inside)
            self.in_line = not data.endswith(b"\n")

    def block(self) -> Block:
        lines = self.newlines + self.in_line
        return Block(self.offset, self.end, self.preview, lines, oversized=True)


def _whole_blocks(
    buf: bytearray, offset: int, block_bytes: int, max_lines: int, ends: RecordEnds, final: bool
) -> Iterator[Block]:
    """Cut whole records off the front of ``buf`` (read from byte ``offset``) while it holds a
    block's worth, or (``final``, the input over) while it holds more lines than a block may;
    a longer record makes its own block."""
    while (not final and len(buf) >= block_bytes) or buf.count(b"\n") > max_lines:
        cut = _cut(buf, block_bytes, max_lines, ends)
        if cut < 0:
            return
        yield _lines_block(offset, bytes(buf[: cut + 1]))
        offset += cut + 1
        del buf[: cut + 1]


def line_blocks(
    chunks: Iterable[bytes],
    start: int,
    block_bytes: int,
    max_lines: int = MAX_BLOCK_LINES,
    quoted_newlines: bool = False,
) -> Iterator[Block]:
    """Blocks of about ``block_bytes`` (and at most ``max_lines`` lines) of whole records from
    ``chunks``, read from byte ``start`` (a record's start).

    Memory stays within ``block_bytes`` plus one chunk, whatever the records look like.
    """
    ends = RecordEnds(quoted_newlines)
    buf = bytearray()
    offset = start
    skipping: _Skipping | None = None
    for piece in chunks:
        chunk = piece
        if skipping is not None:
            end = ends.first(chunk, 0, skipping.inside)
            skipping.skip(chunk if end < 0 else chunk[: end + 1], ends)
            if end < 0:
                continue
            yield skipping.block()
            offset, skipping = skipping.end, None
            chunk = chunk[end + 1 :]
        buf += chunk
        for block in _whole_blocks(buf, offset, block_bytes, max_lines, ends, final=False):
            offset = block.end
            yield block
        if len(buf) > MAX_LINE_BYTES and ends.first(buf) < 0:
            skipping = _Skipping(offset, offset, bytes(buf[:_PREVIEW_BYTES]), 0, False)
            skipping.skip(buf, ends)
            buf.clear()
    if skipping is not None:
        yield skipping.block()
        return
    for block in _whole_blocks(buf, offset, block_bytes, max_lines, ends, final=True):
        offset = block.end
        yield block
    if buf:
        yield _lines_block(offset, bytes(buf))
