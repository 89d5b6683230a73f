"""Cut a byte stream into blocks of whole lines, so each block can be parsed on its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# No valid row comes near this: five fields of at most 255 characters each.
MAX_LINE_BYTES = 64 * 1024
_PREVIEW_BYTES = 200


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


def line_blocks(chunks: Iterable[bytes], start: int, block_bytes: int) -> Iterator[Block]:
    """Blocks of about ``block_bytes`` of whole lines from ``chunks``, read from byte ``start``.

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
        while len(buf) >= block_bytes:
            # Whole lines up to about block_bytes; a line longer than that makes its own block.
            cut = buf.rfind(b"\n", 0, block_bytes)
            if cut < 0:
                cut = buf.find(b"\n", block_bytes)
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
    elif buf:
        yield _lines_block(offset, bytes(buf))
