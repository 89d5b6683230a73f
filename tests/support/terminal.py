"""Programs run in a pseudo-terminal of a given size, and the screen they leave behind.

What a person sees depends on the terminal: its width, whether output is a terminal at all,
and Ctrl-C, which the terminal turns into SIGINT for the whole foreground process group.
:class:`Terminal` gives a program a real pseudo-terminal as its controlling terminal, keeps
everything it writes, and renders it with a VT100 emulator (pyte) into the lines on screen.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path

import pyte

from tests.support.processes import group_members

SCREEN_ROWS = 500  # tall enough that nothing a test reads scrolls off the top
CTRL_C = b"\x03"


def _take_terminal() -> None:
    # In the child, after setsid(): the pseudo-terminal on stdin becomes the controlling
    # terminal, so its line discipline turns Ctrl-C into SIGINT for this process group.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """``argv`` running in a ``columns``-wide pseudo-terminal, in a session of its own."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        columns: int,
        cwd: Path,
        env: Mapping[str, str],
    ) -> None:
        self.columns = columns
        self._output = bytearray()
        self._lock = threading.Lock()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SCREEN_ROWS, columns, 0, 0))
        clean = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        clean.setdefault("TERM", "xterm-256color")
        self.process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=clean,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                if self.process.poll() is not None and not self._pending():
                    return
                continue
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self._output.extend(chunk)

    def _pending(self) -> bool:
        ready, _, _ = select.select([self._master], [], [], 0)
        return bool(ready)

    @property
    def raw(self) -> bytes:
        with self._lock:
            return bytes(self._output)

    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    def screen(self) -> list[str]:
        """The lines on screen, as a VT100 terminal of this width shows them, right-trimmed."""
        screen = pyte.Screen(self.columns, SCREEN_ROWS)
        pyte.ByteStream(screen).feed(self.raw)
        lines = [line.rstrip() for line in screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def type(self, data: bytes) -> None:
        """Keys typed at the terminal (``CTRL_C`` interrupts the foreground group)."""
        os.write(self._master, data)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if self.process.poll() is not None:
                raise AssertionError(f"exited before showing {text!r}:\n{self.text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{text!r} not shown in {timeout:.0f} s:\n{self.text()[-3000:]}"
                )
            time.sleep(0.05)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def close(self) -> None:
        """Kill whatever of the session is left, and release the terminal."""
        # Only while the group has a member: a group id is not reused while one lives.
        if self.process.poll() is None or group_members(self.process.pid):
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        os.close(self._master)


def run_in_terminal(
    argv: Sequence[str],
    *,
    columns: int,
    cwd: Path,
    env: Mapping[str, str],
    typed: bytes = b"",
    timeout: float = 60.0,
) -> tuple[int, Terminal]:
    """Run ``argv`` to its end in a terminal ``columns`` wide; its exit code and terminal."""
    terminal = Terminal(argv, columns=columns, cwd=cwd, env=env)
    try:
        if typed:
            terminal.type(typed)
        code = terminal.wait(timeout)
    finally:
        terminal.close()
    return code, terminal
