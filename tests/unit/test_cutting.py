"""Planning an upload as it streams by: size, hash, and parts cut at newlines."""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator

import pytest

from common.model.jobs import PartPlan
from common.pipeline.cutting import PartCutter


def chunked(data: bytes, rng: random.Random, largest: int) -> Iterator[bytes]:
    i = 0
    while i < len(data):
        size = rng.randint(1, largest)
        yield data[i : i + size]
        i += size


def plan(data: bytes, part_bytes: int, chunks: Iterator[bytes] | list[bytes]) -> PartCutter:
    cutter = PartCutter(part_bytes)
    for chunk in chunks:
        cutter.feed(chunk)
    return cutter


def expected_parts(data: bytes, part_bytes: int) -> list[PartPlan]:
    """Independent reference: cut at the first newline at or after every ``part_bytes``."""
    parts: list[PartPlan] = []
    start = 0
    while True:
        newline = data.find(b"\n", start + part_bytes)
        if newline < 0 or newline + 1 >= len(data):
            parts.append(PartPlan(start, len(data), data.count(b"\n", 0, start) + 1))
            return parts
        parts.append(PartPlan(start, newline + 1, data.count(b"\n", 0, start) + 1))
        start = newline + 1


def sample_file(rng: random.Random, lines: int) -> bytes:
    return b"".join(
        f"{n},{'y' * rng.choice([0, 3, 40, 200, 900])}".encode() + rng.choice([b"\n", b"\r\n"])
        for n in range(lines)
    )


@pytest.mark.parametrize("seed", range(15))
def test_parts_are_cut_at_newlines_the_same_way_for_any_chunking(seed: int) -> None:
    # Given a file and a part size, fed in random chunk sizes
    rng = random.Random(seed)
    data = sample_file(rng, rng.randint(50, 600))
    if rng.random() < 0.5:
        data += b"tail-without-newline"
    part_bytes = rng.choice([1024, 2000, 4096, 10_000])

    # When the upload is planned
    cutter = plan(data, part_bytes, chunked(data, rng, rng.choice([1, 7, 300, 5000])))

    # Then the parts match an independent cut of the whole file
    parts = cutter.parts()
    assert parts == expected_parts(data, part_bytes)
    # And they tile the file, each ending after a newline except the last
    assert parts[0].start == 0 and parts[-1].end == len(data)
    for before, after in itertools.pairwise(parts):
        assert before.end == after.start
        assert data[before.end - 1 : before.end] == b"\n"
    # And each part's first line number is the line its first byte is on
    for part in parts:
        assert part.first_line == data[: part.start].count(b"\n") + 1
    assert cutter.size == len(data)
    assert cutter.sha256 == hashlib.sha256(data).hexdigest()


def test_a_small_file_is_one_part() -> None:
    data = b"1,a\n2,b\n"

    assert plan(data, 1024, [data]).parts() == [PartPlan(0, len(data), 1)]


def test_an_empty_file_is_one_empty_part() -> None:
    cutter = plan(b"", 1024, [])

    assert cutter.parts() == [PartPlan(0, 0, 1)]
    assert cutter.size == 0
    assert cutter.sha256 == hashlib.sha256(b"").hexdigest()


def test_a_file_ending_exactly_at_a_cut_has_no_empty_last_part() -> None:
    # Given 2048 bytes of lines with a part size that cuts right at the end
    line = b"x" * 1023 + b"\n"
    data = line * 2

    parts = plan(data, 1023, [data]).parts()

    assert parts == [PartPlan(0, 1024, 1), PartPlan(1024, 2048, 2)]


def test_a_line_longer_than_a_part_stays_in_one_part() -> None:
    data = b"1,a\n" + b"9," + b"z" * 5000 + b"\n2,b\n"

    parts = plan(data, 1024, chunked(data, random.Random(5), 100)).parts()

    assert parts == [PartPlan(0, len(data) - 4, 1), PartPlan(len(data) - 4, len(data), 3)]


# --- with quoted newlines allowed -----------------------------------------------------------


def record_ends(data: bytes) -> list[int]:
    """Independent reference: the offset after every newline outside a quoted field."""
    ends, inside = [], False
    for i, byte in enumerate(data):
        if byte == ord('"'):
            inside = not inside
        elif byte == ord("\n") and not inside:
            ends.append(i + 1)
    return ends


def quoted_file(rng: random.Random, records: int) -> bytes:
    fields = ["plain", '"a, b"', '"say ""hi"""', '"two\nlines"', '"crlf\r\nhere"', '"\n\n\n"']
    return b"".join(
        f"{n},{rng.choice(fields)}{'y' * rng.choice([0, 40, 300])}".encode()
        + rng.choice([b"\n", b"\r\n"])
        for n in range(records)
    )


@pytest.mark.parametrize("seed", range(15))
def test_with_quoted_newlines_parts_are_cut_only_where_a_record_ends(seed: int) -> None:
    # Given a file whose quoted fields span lines, fed in random chunk sizes
    rng = random.Random(seed)
    data = quoted_file(rng, rng.randint(50, 600))
    part_bytes = rng.choice([1024, 2000, 4096])

    # When the upload is planned with quoted newlines allowed
    cutter = PartCutter(part_bytes, quoted_newlines=True)
    for chunk in chunked(data, rng, rng.choice([1, 7, 300, 5000])):
        cutter.feed(chunk)

    # Then each cut is the first record end at or after the part size
    ends = record_ends(data)
    parts = cutter.parts()
    assert parts[0].start == 0 and parts[-1].end == len(data)
    for before, after in itertools.pairwise(parts):
        assert before.end == after.start
        assert before.end == min(e for e in ends if e > before.start + part_bytes)
    # And each part's first line number is the physical line its first byte is on
    for part in parts:
        assert part.first_line == data[: part.start].count(b"\n") + 1
    assert len(parts) > 1


def test_a_record_spanning_the_part_size_stays_in_one_part() -> None:
    # Given a record whose quoted field spans 1000 lines, past the part size
    data = b'1,"' + b"a\n" * 1000 + b'"\n2,b\n'

    # When the upload is planned with quoted newlines allowed
    cutter = PartCutter(1024, quoted_newlines=True)
    for chunk in chunked(data, random.Random(6), 100):
        cutter.feed(chunk)

    # Then the first part ends with the record, and the next starts on the line after it
    assert cutter.parts() == [
        PartPlan(0, len(data) - 4, 1),
        PartPlan(len(data) - 4, len(data), 1002),
    ]
