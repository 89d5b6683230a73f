"""Cutting a byte stream into blocks of whole records when quoted fields may span lines."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

import pytest

from common.pipeline.blocks import MAX_LINE_BYTES, Block, line_blocks
from tests.unit.test_blocks import chunked


def record(rng: random.Random, n: int) -> bytes:
    """One record whose second field may be quoted, hold doubled quotes and span lines."""
    kind = rng.choice(["plain", "quoted", "escaped", "lf", "crlf", "many"])
    name = {
        "plain": "plain name",
        "quoted": '"Smith, John"',
        "escaped": '"Say ""hi"""',
        "lf": '"first line\nsecond line"',
        "crlf": '"first line\r\nsecond ""line"""',
        "many": '"' + "\n".join("x" * rng.randint(0, 50) for _ in range(rng.randint(2, 9))) + '"',
    }[kind]
    return f"{n},{name}".encode() + rng.choice([b"\n", b"\r\n"])


def record_file(rng: random.Random, count: int) -> tuple[bytes, list[int]]:
    """A file of ``count`` records and the offset where each record ends."""
    data = b""
    ends = []
    for n in range(count):
        data += record(rng, n)
        ends.append(len(data))
    return data, ends


def blocks_of(data: bytes, rng: random.Random, largest: int, block_bytes: int) -> list[Block]:
    return list(line_blocks(chunked(data, rng, largest), 0, block_bytes, quoted_newlines=True))


@pytest.mark.parametrize("seed", range(12))
def test_blocks_end_only_where_a_record_ends_for_any_chunking(seed: int) -> None:
    # Given a file whose quoted fields span lines, read in random chunk sizes
    rng = random.Random(seed)
    data, ends = record_file(rng, 300)
    block_bytes = rng.choice([64, 256, 1000, 4096])

    # When it is cut into blocks with quoted newlines allowed
    blocks = blocks_of(data, rng, rng.choice([1, 50, 3000]), block_bytes)

    # Then the blocks tile the file and each one ends where a record ends
    assert b"".join(b.data for b in blocks) == data
    assert [b.offset for b in blocks[1:]] == [b.end for b in blocks[:-1]]
    assert {b.end for b in blocks} <= set(ends)
    # And they count every physical line, so the next block's line numbers stay right
    assert sum(b.lines for b in blocks) == data.count(b"\n")
    assert not any(b.oversized for b in blocks)


def test_a_record_spanning_the_block_size_stays_whole_in_one_block() -> None:
    # Given a record whose quoted field runs across where a 64-byte block would end
    data = b'1,"' + b"a" * 40 + b"\n" + b"b" * 40 + b'"\n2,c\n'

    blocks = blocks_of(data, random.Random(1), 7, 64)

    assert [b.data for b in blocks] == [data[:-4], b"2,c\n"]
    assert [b.lines for b in blocks] == [2, 1]


def test_without_the_option_every_newline_ends_a_record() -> None:
    data = b'1,"a\nb"\n2,c\n'

    blocks = list(line_blocks([data], 0, 4))

    assert [b.data for b in blocks] == [b'1,"a\n', b'b"\n', b"2,c\n"]


def test_an_unterminated_quote_runs_to_the_end_of_the_stream() -> None:
    data = b'1,a\n2,"never closed\n3,c\n4,d\n'

    blocks = blocks_of(data, random.Random(2), 3, 8)

    assert [b.data for b in blocks] == [b"1,a\n", data[4:]]
    assert blocks[-1].lines == 3


def test_an_oversized_record_is_skipped_as_one_block_without_being_held() -> None:
    # Given a quoted field of 32 MB of short lines between two good records, in 64 KB chunks
    piece = b"z" * 1023 + b"\n"

    def stream() -> Iterator[bytes]:
        yield b'1,a\n2,"'
        for _ in range(512):
            yield piece * 64
        yield b'"\n3,b\n'

    # When it is cut into blocks
    tracemalloc.start()
    try:
        blocks = list(line_blocks(stream(), 0, 4096, quoted_newlines=True))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then memory stayed within a few chunks, and the record was skipped as one block
    assert peak < 2 * 1024 * 1024
    assert [b.oversized for b in blocks] == [False, True, False]
    skipped = blocks[1]
    assert (skipped.offset, skipped.end) == (4, 4 + 3 + 512 * 64 * 1024 + 2)
    assert skipped.data.startswith(b'2,"zzz') and len(skipped.data) < 1024
    # And it counts all its lines, so the record after it keeps its line number
    assert skipped.lines == 512 * 64 + 1
    assert blocks[2].data == b"3,b\n"


def test_an_unterminated_quote_longer_than_a_record_may_be_is_skipped_to_the_end() -> None:
    data = b'1,a\n2,"' + b"z\n" * MAX_LINE_BYTES + b"3,b\n"

    blocks = blocks_of(data, random.Random(3), 8192, 1024)

    assert [b.oversized for b in blocks] == [False, True]
    assert (blocks[1].offset, blocks[1].end) == (4, len(data))
    assert sum(b.lines for b in blocks) == data.count(b"\n")


def test_a_block_of_tiny_records_is_cut_at_the_line_limit_between_records() -> None:
    data = b'"x\n"\n' * 500

    blocks = list(line_blocks(iter([data]), 0, 10_000, max_lines=63, quoted_newlines=True))

    assert max(b.lines for b in blocks) == 62
    assert b"".join(b.data for b in blocks) == data
    assert all(b.data.count(b'"') % 2 == 0 for b in blocks)
