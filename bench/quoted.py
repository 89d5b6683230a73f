"""What ``allow_quoted_newlines`` costs: ``python -m bench.quoted [--rows N] [--repeat N]``.

Loads the same hired_employees file into the service on SQLite with and without the option,
then two copies of it whose every name is a quoted field: on one line (``"Ada Lovelace"``)
without the option, and spanning two lines (``"Ada\\nLovelace"``) with it. Each load goes
into a fresh service with one worker and parts of ``--part-mib``, so that the file is cut into
several parts. Prints the seconds from the first byte of the upload to the job ``succeeded``,
and the job's parts; then the CPU seconds of cutting, parsing and validating each file in this
process alone (no database), which a busy machine disturbs less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.generate import write_hired, write_parents
from bench.loads import DATA, upload_and_wait
from bench.service import running_service
from common.model.catalog import current
from common.pipeline.blocks import line_blocks
from common.pipeline.csvparse import parse_block
from common.pipeline.validation import validate

_BLOCK_BYTES = 2 * 1024 * 1024
_READ_BYTES = 4 * 1024 * 1024


def write_quoted(plain: Path, between: str) -> Path:
    """``plain`` with each name written as a quoted field, ``between`` its two words."""
    path = plain.with_name(f"{plain.stem}_quoted{'_lines' if between == chr(10) else ''}.csv")
    if path.exists():
        return path
    with plain.open(encoding="utf-8") as src, path.open("w", encoding="utf-8", newline="") as out:
        for line in src:
            ident, name, rest = line.split(",", 2)
            first, last = name.split(" ", 1)
            out.write(f'{ident},"{first}{between}{last}",{rest}')
    return path


def load_once(path: Path, rows: int, quoted_newlines: bool, workdir: Path) -> tuple[float, int]:
    with running_service(workdir, 1, None) as service:
        service.load_parents(DATA)
        params = {"allow_quoted_newlines": "true"} if quoted_newlines else {}
        _, seconds, job = upload_and_wait(service, path, rows, params)
        parts = job["parts"]
        assert isinstance(parts, int)
        return seconds, parts


def pipeline_cpu_seconds(path: Path, rows: int, quoted_newlines: bool) -> float:
    """CPU seconds to cut ``path`` into blocks, parse and validate them, as a worker does."""
    spec = current().tables["hired_employees"]
    start = time.process_time()
    valid, line = 0, 1
    with path.open("rb") as f:
        chunks = iter(lambda: f.read(_READ_BYTES), b"")
        for block in line_blocks(chunks, 0, _BLOCK_BYTES, quoted_newlines=quoted_newlines):
            parsed = parse_block(block.data, line, spec, block.offset == 0, quoted_newlines)
            valid += validate(spec, parsed, quoted_newlines).table.num_rows
            line += block.lines
    assert valid == rows, valid
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=16)
    args = parser.parse_args()
    os.environ["PART_BYTES"] = str(args.part_mib * 1024 * 1024)
    DATA.mkdir(parents=True, exist_ok=True)
    write_parents(DATA)
    plain = write_hired(DATA, args.rows)
    runs = {
        "without the option": (plain, False),
        "with allow_quoted_newlines": (plain, True),
        "every name quoted, on one line, without it": (write_quoted(plain, " "), False),
        "with it, every name quoted across two lines": (write_quoted(plain, "\n"), True),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    parts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-quoted-") as tmp:
        for round_ in range(args.repeat):
            for i, (name, (path, option)) in enumerate(runs.items()):
                workdir = Path(tmp) / f"{round_}-{i}"
                took, parts[name] = load_once(path, args.rows, option, workdir)
                seconds[name].append(took)
                print(f"{name}: {took:.2f} s, {parts[name]} parts", flush=True)
    for name, runs_s in seconds.items():
        if runs_s:
            middle = statistics.median(runs_s)
            print(
                f"| {name} | {middle:.2f} | {min(runs_s):.2f} to "
                f"{max(runs_s):.2f} | {args.rows / middle:,.0f} | {parts[name]} |"
            )
    for name, (path, option) in runs.items():
        cpu = [pipeline_cpu_seconds(path, args.rows, option) for _ in range(3)]
        print(f"| {name} | {statistics.median(cpu):.2f} CPU s to cut, parse and validate |")


if __name__ == "__main__":
    main()
