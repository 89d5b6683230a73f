"""Cutting a byte stream into blocks of whole lines, whatever sizes the stream arrives in."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

import pytest

from common.pipeline.blocks import MAX_LINE_BYTES, Block, line_blocks


def chunked(data: bytes, rng: random.Random, largest: int) -> Iterator[bytes]:
    i = 0
    while i < len(data):
        size = rng.randint(1, largest)
        yield data[i : i + size]
        i += size


def sample_file(rng: random.Random, lines: int) -> bytes:
    out = []
    for n in range(lines):
        width = rng.choice([0, 1, 5, 30, 120, 400])
        ending = rng.choice([b"\n", b"\r\n"])
        out.append(f"{n},".encode() + b"x" * width + ending)
    return b"".join(out)


def assert_whole_lines(blocks: list[Block], data: bytes, start: int) -> None:
    """Blocks tile ``data[start:]`` in order, each one made of whole lines."""
    offset = start
    for block in blocks:
        assert block.offset == offset
        assert block.end == offset + len(block.data)
        assert block.data == data[block.offset : block.end]
        assert block.lines == block.data.count(b"\n") + (not block.data.endswith(b"\n"))
        if block.end < len(data):
            assert block.data.endswith(b"\n")
        offset = block.end
    assert offset == len(data)


@pytest.mark.parametrize("seed", range(12))
def test_any_chunking_gives_the_same_lines_in_blocks_of_whole_lines(seed: int) -> None:
    # Given a file of lines of mixed widths, read in random chunk sizes
    rng = random.Random(seed)
    data = sample_file(rng, 400)
    block_bytes = rng.choice([64, 256, 1000, 4096])

    # When it is cut into blocks twice, with different chunkings
    first = list(line_blocks(chunked(data, rng, 50), 0, block_bytes))
    second = list(line_blocks(chunked(data, rng, 3000), 0, block_bytes))

    # Then both tile the file with whole lines and hold the same lines in the same order
    assert_whole_lines(first, data, 0)
    assert_whole_lines(second, data, 0)
    assert b"".join(b.data for b in first).splitlines() == data.splitlines()
    assert sum(b.lines for b in first) == sum(b.lines for b in second) == data.count(b"\n")
    assert not any(b.oversized for b in first + second)


def test_blocks_stay_near_the_block_size() -> None:
    data = b"".join(f"{i},line\n".encode() for i in range(5000))

    blocks = list(line_blocks(chunked(data, random.Random(1), 100), 0, 2048))

    assert len(blocks) > 10
    assert all(len(b.data) < 2048 + 100 for b in blocks)


def test_offsets_count_from_where_reading_started() -> None:
    # Given a resume from byte 1000 of a file
    data = b"".join(f"{i},line\n".encode() for i in range(500))
    start = data.index(b"\n", 1000) + 1

    blocks = list(line_blocks(chunked(data[start:], random.Random(2), 64), start, 512))

    assert_whole_lines(blocks, data, start)


def test_a_last_line_without_a_newline_is_one_more_line() -> None:
    blocks = list(line_blocks([b"1,a\n2,", b"b"], 0, 1024))

    assert [(b.data, b.lines) for b in blocks] == [(b"1,a\n2,b", 2)]


def test_an_oversized_line_is_skipped_as_one_short_block_and_the_rest_is_kept() -> None:
    # Given a line far longer than any valid row between two good lines
    huge = b"9," + b"z" * (3 * MAX_LINE_BYTES) + b"\n"
    data = b"1,a\n" + huge + b"2,b\n3,c\n"

    # When it is cut into blocks from small chunks
    blocks = list(line_blocks(chunked(data, random.Random(3), 4096), 0, 1024))

    # Then the long line is one oversized block covering exactly its bytes, holding only a preview
    oversized = [b for b in blocks if b.oversized]
    assert len(oversized) == 1
    skipped = oversized[0]
    assert (skipped.offset, skipped.end, skipped.lines) == (4, 4 + len(huge), 1)
    assert data[skipped.offset : skipped.end] == huge
    assert huge.startswith(skipped.data)
    assert len(skipped.data) <= 1024
    # And the lines around it come through whole and in order
    normal = b"".join(b.data for b in blocks if not b.oversized)
    assert normal == b"1,a\n2,b\n3,c\n"
    assert [b.offset for b in blocks] == sorted(b.offset for b in blocks)
    assert blocks[-1].end == len(data)


def test_an_oversized_line_at_the_end_of_the_file_is_still_reported() -> None:
    data = b"1,a\n" + b"z" * (2 * MAX_LINE_BYTES)

    blocks = list(line_blocks(chunked(data, random.Random(4), 8192), 0, 1024))

    assert blocks[-1].oversized
    assert (blocks[-1].offset, blocks[-1].end) == (4, len(data))


def test_an_oversized_line_is_never_held_in_memory() -> None:
    # Given a 32 MB line arriving in 64 KB chunks
    piece = b"z" * (64 * 1024)

    def stream() -> Iterator[bytes]:
        yield b"1,a\n"
        for _ in range(512):
            yield piece
        yield b"\n2,b\n"

    # When it is cut into blocks
    tracemalloc.start()
    try:
        blocks = list(line_blocks(stream(), 0, 4096))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then memory stayed within a few chunks, and the line was skipped as one block
    assert peak < 2 * 1024 * 1024
    assert [b.oversized for b in blocks] == [False, True, False]
    assert blocks[1].end - blocks[1].offset == 512 * len(piece) + 1
    assert blocks[2].data == b"2,b\n"


@pytest.mark.parametrize("chunk", [1, 5, 64, 10_000])
def test_a_block_of_tiny_lines_is_cut_at_the_line_limit(chunk: int) -> None:
    data = b"x\n" * 1000 + b"y"
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]

    blocks = list(line_blocks(iter(pieces), 0, 10_000, max_lines=64))

    assert max(b.lines for b in blocks) == 64
    assert sum(b.lines for b in blocks) == 1001
    assert b"".join(b.data for b in blocks) == data
    assert all(b.data.endswith(b"\n") for b in blocks[:-1])
