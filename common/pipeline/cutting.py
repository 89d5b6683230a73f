"""Watches an upload stream go by: size, SHA-256, and where to cut it into parts at record
ends (newlines; with ``allow_quoted_newlines``, newlines outside quoted fields)."""

from __future__ import annotations

import hashlib

from common.model.jobs import PartPlan
from common.pipeline.records import RecordEnds


class PartCutter:
    """Feed it the bytes of a file in order; it hashes them and cuts parts of about
    ``part_bytes`` each, at record ends."""

    def __init__(self, part_bytes: int, quoted_newlines: bool = False) -> None:
        self._part_bytes = part_bytes
        self._ends = RecordEnds(quoted_newlines)
        self._sha = hashlib.sha256()
        self.size = 0
        self._lines = 0  # newlines seen so far
        self._inside = False  # whether a quoted field is open after the bytes seen so far
        self._part_start = 0
        self._part_first_line = 1
        self._parts: list[PartPlan] = []

    def feed(self, data: bytes) -> None:
        self._sha.update(data)
        start = self.size
        cut_from = self._part_start + self._part_bytes
        while cut_from < start + len(data):
            at = max(0, cut_from - start)
            inside = self._ends.open_after(data, self._inside, stop=at)
            newline = self._ends.first(data, at, inside)
            if newline < 0:
                break
            cut = start + newline + 1
            first_line = self._part_first_line
            lines_before = self._lines + data.count(b"\n", 0, newline + 1)
            self._parts.append(PartPlan(self._part_start, cut, first_line))
            self._part_start = cut
            self._part_first_line = lines_before + 1
            cut_from = cut + self._part_bytes
        self._lines += data.count(b"\n")
        self._inside = self._ends.open_after(data, self._inside)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def parts(self) -> list[PartPlan]:
        """The parts of everything fed so far; the last part runs to the end of the file."""
        tail = [PartPlan(self._part_start, self.size, self._part_first_line)]
        if self._parts and self._part_start == self.size:
            tail = []
        return [*self._parts, *tail]
