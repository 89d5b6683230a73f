"""Cut a byte stream into blocks of whole lines, so each block can be parsed on its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# No valid row comes near this: five fields of at most 255 characters each.
MAX_LINE_BYTES = 64 * 1024
_PREVIEW_BYTES = 200
# Lines per block at most: a block of tiny lines (junk) would otherwise turn one block's bytes
# into a million rejections held at once. Real rows are tens of bytes, so this rarely binds.
MAX_BLOCK_LINES = 65_536


@dataclass(frozen=True)
class Block:
    """Whole lines ``data`` starting at byte ``offset``; ``end`` is the offset after them.

    ``oversized`` marks a single line longer than :data:`MAX_LINE_BYTES`: ``data`` then holds
    only its first bytes, for the rejection, and the line was skipped without being held.
    """

    offset: int
    end: int
    data: bytes
    lines: int
    oversized: bool = False


def _lines_block(offset: int, data: bytes) -> Block:
    ends_open = bool(data) and not data.endswith(b"\n")
    return Block(offset, offset + len(data), data, data.count(b"\n") + ends_open)


def _cut(buf: bytearray, block_bytes: int, max_lines: int) -> int:
    """Where the next block ends in ``buf``: after the last newline within ``block_bytes``
    (or the first one past it, for a longer line), and at most ``max_lines`` lines in; -1 when
    ``buf`` holds no whole line."""
    cut = buf.rfind(b"\n", 0, block_bytes)
    if cut < 0:
        cut = buf.find(b"\n", block_bytes)
    if cut < 0:
        return -1
    if buf.count(b"\n", 0, cut + 1) > max_lines:
        cut = -1
        for _ in range(max_lines):
            cut = buf.find(b"\n", cut + 1)
    return cut


def line_blocks(
    chunks: Iterable[bytes], start: int, block_bytes: int, max_lines: int = MAX_BLOCK_LINES
) -> Iterator[Block]:
    """Blocks of about ``block_bytes`` (and at most ``max_lines`` lines) of whole lines from
    ``chunks``, read from byte ``start``.

    Memory stays within ``block_bytes`` plus one chunk, whatever the lines look like.
    """
    buf = bytearray()
    offset = start
    skipping: Block | None = None  # an oversized line, skipped until its newline
    for piece in chunks:
        chunk = piece
        if skipping is not None:
            newline = chunk.find(b"\n")
            end = skipping.end + (len(chunk) if newline < 0 else newline + 1)
            skipping = Block(skipping.offset, end, skipping.data, 1, True)
            if newline < 0:
                continue
            yield skipping
            offset, skipping = end, None
            chunk = chunk[newline + 1 :]
        buf += chunk
        while len(buf) >= block_bytes or buf.count(b"\n") > max_lines:
            # Whole lines up to about block_bytes; a line longer than that makes its own block.
            cut = _cut(buf, block_bytes, max_lines)
            if cut < 0:
                break
            yield _lines_block(offset, bytes(buf[: cut + 1]))
            offset += cut + 1
            del buf[: cut + 1]
        if len(buf) > MAX_LINE_BYTES and b"\n" not in buf:
            skipping = Block(offset, offset + len(buf), bytes(buf[:_PREVIEW_BYTES]), 1, True)
            buf.clear()
    if skipping is not None:
        yield skipping
        return
    while buf.count(b"\n") > max_lines:
        cut = _cut(buf, block_bytes, max_lines)
        yield _lines_block(offset, bytes(buf[: cut + 1]))
        offset += cut + 1
        del buf[: cut + 1]
    if buf:
        yield _lines_block(offset, bytes(buf))
