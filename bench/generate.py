"""Deterministic data sets for the benchmarks: ``python -m bench.generate ROWS OUT_DIR``.

Writes departments.csv (12 rows), jobs.csv (183 rows) and hired_employees_<ROWS>.csv whose rows
are all valid, with ids 1..ROWS, so every loader is compared on the same work.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEPARTMENTS = 12
JOBS = 183
_START = datetime(2015, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = int(timedelta(days=365 * 10).total_seconds())
_FIRST = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger"]
_LAST = ["Lovelace", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen"]


def write_parents(out: Path) -> None:
    (out / "departments.csv").write_text(
        "".join(f"{i},Department {i:02d}\n" for i in range(1, DEPARTMENTS + 1))
    )
    (out / "jobs.csv").write_text("".join(f"{i},Job title {i:03d}\n" for i in range(1, JOBS + 1)))


def hired_path(out: Path, rows: int) -> Path:
    return out / f"hired_employees_{rows}.csv"


def write_hired(out: Path, rows: int, seed: int = 2021) -> Path:
    """Write (once) ``rows`` valid hired_employees rows; returns the file."""
    path = hired_path(out, rows)
    if path.exists():
        return path
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        batch: list[str] = []
        for i in range(1, rows + 1):
            when = _START + timedelta(seconds=rng.randrange(_SPAN_SECONDS))
            batch.append(
                f"{i},{rng.choice(_FIRST)} {rng.choice(_LAST)},{when:%Y-%m-%dT%H:%M:%SZ},"
                f"{rng.randint(1, DEPARTMENTS)},{rng.randint(1, JOBS)}\n"
            )
            if len(batch) == 100_000:
                f.write("".join(batch))
                batch.clear()
        f.write("".join(batch))
    tmp.rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", type=int)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write_parents(args.out)
    print(write_hired(args.out, args.rows))


if __name__ == "__main__":
    main()
