"""What a benchmark measured, and the table it prints."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Result:
    name: str
    seconds: float
    rows: int
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fastest_in_turns(measures: Sequence[Callable[[int], Result]], turns: int) -> list[Result]:
    """Run each of ``measures`` (given the turn, from 0) ``turns`` times, taking turns (a, b,
    a, b), so that whatever else the machine does falls on all of them alike, and the first
    run of each (cold caches, a file still being written back) is not the only one; the
    fastest run of each, every run's seconds in its notes."""
    runs: list[list[Result]] = [[] for _ in measures]
    for turn in range(turns):
        for measure, done in zip(measures, runs, strict=True):
            done.append(measure(turn))
    fastest = []
    for done in runs:
        best = min(done, key=lambda r: r.seconds)
        if len(done) > 1:
            best.notes["runs_s"] = " ".join(f"{r.seconds:.2f}" for r in done)
        fastest.append(best)
    return fastest


def ratio(label: str, service: Result, baseline: Result, goal: str = "") -> str:
    """``label: service / baseline = 1.23`` and the goal, if any."""
    line = f"{label} = {service.seconds / baseline.seconds:.2f}"
    return f"{line} (goal {goal})" if goal else line


def print_table(results: list[Result], ratios: list[str]) -> None:
    load = os.getloadavg()[0]
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load:.1f} at the end"
    )
    print(f"{'what':72} {'seconds':>9} {'rows/s':>11}  notes")
    for r in results:
        notes = ", ".join(f"{k}={v}" for k, v in r.notes.items())
        print(f"{r.name:72} {r.seconds:9.2f} {r.rows_per_second:11,.0f}  {notes}")
    print()
    for line in ratios:
        print(line)
