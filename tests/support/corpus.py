"""The hostile-input corpus under ``tests/corpus`` and the outcome each case's spec gives it.

A spec says, for every line of an upload (or every row of a batch), whether it loads, updates
or is rejected and by which rules, as the README's data rules decide; the counts a job or a
batch answer must show follow from those lines, and the number of lines from the file itself.
See ``tests/corpus/README.md`` for the format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
Kind = Literal["load", "update", "reject"]
_RULE = re.compile(r"^[A-Za-z_]+:[a-z_0-9]+$")


@dataclass(frozen=True)
class Outcome:
    """What one line (or batch row) comes to: loaded or updated under ``ident``, or rejected."""

    kind: Kind
    ident: int | None = None
    rules: tuple[str, ...] = ()
    why: str = ""


@dataclass(frozen=True)
class Case:
    """One file of the corpus (or one generated at test time) with its spec."""

    name: str
    table: str
    spec: Path
    data_file: Path | None
    about: str
    generate: str | None = None
    parents: bool = True
    existing: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, str] = field(default_factory=dict)
    fails: str | None = None
    refused: int | None = None
    points_at: list[str] = field(default_factory=list)
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    stored: dict[int, dict[str, Any]] = field(default_factory=dict)

    def ids(self, kind: Kind) -> list[int]:
        return sorted(
            o.ident for o in self.outcomes.values() if o.kind == kind and o.ident is not None
        )

    def rejected(self) -> list[tuple[int, list[str]]]:
        """(line or index, rules) of every rejected line, in order."""
        return [(n, list(o.rules)) for n, o in sorted(self.outcomes.items()) if o.kind == "reject"]


def _outcome(text: str, where: str) -> Outcome:
    head, _, why = (part.strip() for part in text.partition(" — "))
    kind, *rest = head.split()
    if kind in ("load", "update") and len(rest) == 1:
        return Outcome(kind, int(rest[0]), why=why)  # type: ignore[arg-type]
    if kind == "reject" and rest and all(_RULE.match(r) for r in rest):
        return Outcome("reject", rules=tuple(rest), why=why)
    raise ValueError(f"{where}: cannot read {text!r} (load ID | update ID | reject COL:RULE…)")


def _outcomes(entries: dict[Any, str], where: str) -> dict[int, Outcome]:
    """``{line: "load 7"}``, with ranges ``{"1-10": "load 1-10"}`` for runs of loaded lines."""
    found: dict[int, Outcome] = {}
    for key, text in entries.items():
        if isinstance(key, str) and "-" in key:
            first, last = (int(k) for k in key.split("-"))
            kind, span = text.split()
            start, end = (int(i) for i in span.split("-"))
            if kind != "load" or end - start != last - first:
                raise ValueError(f"{where}: range {key} must load as many ids: {text!r}")
            found.update({n: Outcome("load", start + n - first) for n in range(first, last + 1)})
        else:
            found[int(key)] = _outcome(text, f"{where} line {key}")
    return found


def load_case(spec: Path, section: str) -> Case:
    raw: dict[str, Any] = yaml.safe_load(spec.read_text(encoding="utf-8"))
    relative = spec.relative_to(CORPUS / section).with_suffix("")
    table = relative.parts[0]
    data_files = [p for p in spec.parent.glob(f"{spec.stem}.*") if p.suffix != ".yaml"]
    where = str(spec.relative_to(CORPUS))
    if bool(data_files) == ("generate" in raw):
        raise ValueError(f"{where}: needs a data file beside it or 'generate', not both")
    return Case(
        name=relative.as_posix(),
        table=table,
        spec=spec,
        data_file=data_files[0] if data_files else None,
        about=raw["about"],
        generate=raw.get("generate"),
        parents=raw.get("parents", True),
        existing=raw.get("existing", []),
        params=raw.get("params", {}),
        fails=raw.get("fails"),
        refused=raw.get("refused"),
        points_at=raw.get("points_at", []),
        outcomes=_outcomes(raw.get("lines") or raw.get("rows") or {}, where),
        stored={int(k): v for k, v in (raw.get("stored") or {}).items()},
    )


def cases(section: str) -> list[Any]:
    """Every spec under ``uploads/`` or ``batches/``, as pytest params named after the case."""
    specs = sorted((CORPUS / section).rglob("*.yaml"))
    return [pytest.param(c, id=c.name) for c in (load_case(s, section) for s in specs)]


def data_files(section: str) -> list[Path]:
    return sorted(p for p in (CORPUS / section).rglob("*") if p.is_file() and p.suffix != ".yaml")


def physical_lines(data: bytes) -> int:
    """Lines of a file as an editor counts them: LF ends a line (CRLF too); a last line without
    one still counts; an empty file has none."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def batch_rows(body: bytes) -> int:
    """How many rows a batch body holds (Python's json, as the service reads it)."""
    rows = json.loads(body)["rows"]
    assert isinstance(rows, list)
    return len(rows)


def requests() -> list[Any]:
    table: list[dict[str, Any]] = yaml.safe_load((CORPUS / "requests.yaml").read_text("utf-8"))
    return [pytest.param(case, id=case["case"]) for case in table]
