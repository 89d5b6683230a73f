"""The ``ingest`` command line run as its own process (``python -m cli``, what the ``ingest``
script runs), so that exit codes, stdout and stderr are exactly what an operator sees: through
pipes, or in a pseudo-terminal of a given width, rendered as a terminal shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from tests.support.processes import REPO
from tests.support.terminal import run_in_terminal

CLI_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env["INGEST_URL"] = url
    env.update(extra)
    return env


def ingest(url: str, *args: str, env: dict[str, str] | None = None) -> Run:
    """The CLI with its output going to pipes."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env={**cli_env(url), "COLUMNS": "200", **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    run = Run(done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in run.stdout + run.stderr, run
    return run


def on_screen(url: str, columns: int, *args: str, typed: bytes = b"") -> tuple[int, list[str]]:
    """The CLI in a terminal ``columns`` wide: its exit code and the lines left on screen."""
    code, terminal = run_in_terminal(
        [sys.executable, "-m", "cli", *args],
        columns=columns,
        cwd=REPO,
        env=cli_env(url),
        typed=typed,
        timeout=CLI_TIMEOUT_SECONDS,
    )
    lines = terminal.screen()
    assert "Traceback" not in terminal.text(), terminal.text()
    assert "\N{HORIZONTAL ELLIPSIS}" not in "\n".join(lines), "\n".join(lines)
    return code, lines


def line_with(lines: list[str], *parts: str) -> str:
    """The one screen line holding every part: what must not be split across lines."""
    found = [line for line in lines if all(p in line for p in parts)]
    assert len(found) == 1, (parts, "\n".join(lines))
    return found[0]
