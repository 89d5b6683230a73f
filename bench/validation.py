"""What validation costs per type: ``python -m bench.validation [--rows N] [--repeat N]``,
or ``python -m bench.run --only validation``.

Parses and validates, in this process alone (no database, no service), blocks of 20,000 clean
rows of two tables: the shipped hired_employees, and a wide table of 12 columns of every type
(optional ones with null markers, a unique one, a ``;`` delimiter). Reports the CPU seconds
and rows per second of parsing and of validating, the best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from bench.results import Result, print_table
from common.model.catalog import Column, ColumnType, TableSpec, Timezone, current
from common.pipeline.csvparse import parse_block
from common.pipeline.validation import validate

_BLOCK_ROWS = 20_000

WIDE = TableSpec(
    "wide",
    (
        Column("id", ColumnType.ID),
        Column("parent_id", ColumnType.ID, references="wide"),
        Column("code", ColumnType.TEXT, max_length=20, unique=True),
        Column("label", ColumnType.TEXT, required=False),
        Column("quantity", ColumnType.INTEGER),
        Column("price", ColumnType.DECIMAL, precision=12, scale=4),
        Column("weight", ColumnType.FLOAT, required=False, null_marker="NULL"),
        Column("active", ColumnType.BOOLEAN),
        Column("born", ColumnType.DATE),
        Column("seen", ColumnType.DATE, required=False),
        Column("created", ColumnType.TIMESTAMP),
        Column("updated", ColumnType.TIMESTAMP, timezone=Timezone.ASSUME_UTC),
    ),
    delimiter=";",
)


def _wide_row(i: int, rng: random.Random) -> str:
    day = f"20{rng.randrange(10, 24)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    return ";".join(
        (
            str(i),
            str(rng.randrange(1, 1000)),
            f"C{i:09d}",
            "" if i % 3 else f"label {i}",
            str(rng.randrange(-(10**6), 10**6)),
            f"{rng.randrange(10**7)}.{rng.randrange(10**4):04d}",
            "NULL" if i % 5 == 0 else f"{rng.random() * 100:.3f}",
            "true" if i % 2 else "0",
            day,
            "" if i % 4 else day,
            f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:07Z",
            f"{day} 12:00:00",
        )
    )


def _hired_row(i: int, rng: random.Random) -> str:
    day = f"20{rng.randrange(10, 24)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    return f"{i},Name {i},{day}T10:11:12Z,{rng.randrange(1, 13)},{rng.randrange(1, 184)}"


def _blocks(row: Callable[[int, random.Random], str], rows: int) -> list[tuple[int, bytes]]:
    rng = random.Random(7)
    out = []
    for start in range(1, rows + 1, _BLOCK_ROWS):
        end = min(start + _BLOCK_ROWS, rows + 1)
        text = "".join(row(i, rng) + "\n" for i in range(start, end))
        out.append((start, text.encode()))
    return out


def _best(repeat: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def measure(
    spec: TableSpec, blocks: list[tuple[int, bytes]], rows: int, repeat: int
) -> list[Result]:
    parsed = [parse_block(data, line, spec, at_file_start=line == 1) for line, data in blocks]

    def parse() -> None:
        for line, data in blocks:
            parse_block(data, line, spec, at_file_start=line == 1)

    def check() -> None:
        for raw in parsed:
            assert not validate(spec, raw).rejected

    width = f"{spec.name}, {len(spec.columns)} columns"
    return [
        Result(f"parse {width} (CPU)", _best(repeat, parse), rows),
        Result(f"validate {width} (CPU)", _best(repeat, check), rows),
    ]


def validation_speed(rows: int, repeat: int = 3) -> list[Result]:
    hired = current().table("hired_employees")
    return measure(hired, _blocks(_hired_row, rows), rows, repeat) + measure(
        WIDE, _blocks(_wide_row, rows), rows, repeat
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print_table(validation_speed(args.rows, args.repeat), [])


if __name__ == "__main__":
    main()
