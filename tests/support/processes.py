"""Start the real processes (supervisor, API, worker) for end-to-end tests, and stop them cleanly.

Each process runs in its own session, so that its process group holds it and every child it
spawns: the group tells whether anything outlived a stop, and lets a failed test clean up
without touching any process it did not start. Output goes to files in the test's folder.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from common.settings import Settings

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 40.0
# Starts of a server whose free port another process took first.
BIND_ATTEMPTS = 3

# Fast but realistic knobs for every process an e2e test starts.
FAST_ENV = {
    "LOG_FORMAT": "json",
    "LOCK_DURATION_SECONDS": "10",
    "DEPENDENCY_WAIT_SECONDS": "0.3",
    "RECEIVE_WAIT_SECONDS": "0.3",
    "TRANSIENT_BACKOFF_SECONDS": "0.2",
    "TRANSIENT_BACKOFF_MAX_SECONDS": "1",
    "RETRY_MAX_WAIT_SECONDS": "0.5",
}


def _ephemeral_ports() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    It is drawn from below the kernel's ephemeral range, which outgoing connections (to
    PostgreSQL, Azurite…) take their ports from, so none of them can take it before the process
    meant to listen on it does. Another test may still draw it: :func:`running` checks that its
    own process is the one listening, and starts it again on another port when it lost the race.
    """
    ephemeral = _ephemeral_ports()
    first = 20_000 if ephemeral.start > 21_000 else 1024
    last = ephemeral.start if ephemeral.start > first + 1000 else 65_536
    for _ in range(50):
        port = random.randrange(first, last)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        found: int = s.getsockname()[1]
        return found


def _listening_sockets(port: int) -> set[str]:
    """``socket:[inode]`` of every TCP socket listening on ``port``, as /proc/<pid>/fd shows."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    found.add(f"socket:[{inode}]")
    return found


def holds_listening_socket(pid: int, port: int) -> bool:
    """Whether ``pid`` or one of its descendants listens on ``port``."""
    sockets = _listening_sockets(port)
    if not sockets:
        return False
    for owner in (pid, *descendants_of(pid)):
        with suppress(OSError):
            for fd in Path(f"/proc/{owner}/fd").iterdir():
                with suppress(OSError):
                    if os.readlink(fd) in sockets:
                        return True
    return False


def _setting_names() -> set[str]:
    names = set()
    for name, info in Settings.model_fields.items():
        names.add(name.upper())
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias.upper())
    return names


def service_env(
    data_dir: Path,
    *,
    port: int | None = None,
    workers: int | None = None,
    database_url: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a service process: this one's, minus any service setting it carries
    (a developer's DATABASE_URL must not leak in), plus the test's settings."""
    own = _setting_names()
    env = {k: v for k, v in os.environ.items() if k.upper() not in own}
    env.update(FAST_ENV)
    env["DATA_DIR"] = str(data_dir)
    env["HOST"] = "127.0.0.1"
    env["PYTHONUNBUFFERED"] = "1"
    if port is not None:
        env["PORT"] = str(port)
    if workers is not None:
        env["WORKERS"] = str(workers)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


# --- processes, seen through /proc -------------------------------------------------------------


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str
    ppid: int
    pgid: int


def _stat(pid: int) -> ProcInfo | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces; the fields after it are fixed.
    rest = data[data.rindex(")") + 2 :].split()
    return ProcInfo(pid, rest[0], int(rest[1]), int(rest[2]))


def _all_processes() -> list[ProcInfo]:
    infos = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None and info.state != "Z":  # zombies hold no resources
                infos.append(info)
    return infos


def children_of(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    return sorted(p.pid for p in _all_processes() if p.ppid == pid)


def descendants_of(pid: int) -> list[int]:
    """Live children of ``pid``, their children, and so on."""
    infos = _all_processes()
    found: list[int] = []
    parents = {pid}
    while parents:
        parents = {p.pid for p in infos if p.ppid in parents}
        found.extend(sorted(parents))
    return found


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (not zombies)."""
    live = {p.pid for p in _all_processes()}
    return [p for p in pids if p in live]


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    return sorted(p.pid for p in _all_processes() if p.pgid == pgid)


def module_of(pid: int) -> str | None:
    """The module a ``python -m <module>`` process runs, if it is one."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return None
    if b"-m" in argv:
        i = argv.index(b"-m")
        if i + 1 < len(argv):
            return argv[i + 1].decode()
    return None


# --- one started process ------------------------------------------------------------------------


@dataclass
class Started:
    """A process started by a test, with its output files and, for servers, its URL."""

    module: str
    process: subprocess.Popen[bytes]
    folder: Path
    base_url: str | None = None
    port: int | None = None
    _files: list[object] = field(default_factory=list, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def stdout_path(self) -> Path:
        return self.folder / f"{self.module}.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.folder / f"{self.module}.stderr.log"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stderr_tail(self, lines: int = 40) -> str:
        text = self.stderr().splitlines()[-lines:]
        return f"--- last lines of {self.stderr_path} ---\n" + "\n".join(text)

    def client(self, timeout: float = 30.0) -> httpx.Client:
        assert self.base_url is not None, f"{self.module} serves no HTTP"
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def children(self, module: str | None = None) -> list[int]:
        """Live child processes, optionally only those running ``python -m <module>``."""
        pids = children_of(self.pid)
        return [p for p in pids if module is None or module_of(p) == module]

    def wait_for_log(self, text: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr():
                return
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.module} exited with {self.process.returncode} before logging "
                    f"{text!r}\n{self.stderr_tail()}"
                )
            time.sleep(0.1)
        pytest.fail(f"{self.module} did not log {text!r} in {timeout:.0f} s\n{self.stderr_tail()}")

    def wait_listening(self, port: int, timeout: float = READY_TIMEOUT_SECONDS) -> bool:
        """True once this process (or a child) listens on ``port``; False if it could not bind
        it (another process holds it) and exited or said so."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if holds_listening_socket(self.pid, port):
                return True
            if self.process.poll() is not None or lost_its_port(self):
                return False
            time.sleep(0.05)
        pytest.fail(
            f"{self.module} did not listen on {port} in {timeout:.0f} s\n{self.stderr_tail()}"
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Wait until GET /readyz answers 200."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with self.client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    pytest.fail(
                        f"{self.module} exited with {self.process.returncode} before it was "
                        f"ready\n{self.stderr_tail()}"
                    )
                try:
                    answer = client.get("/readyz")
                    if answer.status_code == 200:
                        return
                    last = f"{answer.status_code} {answer.text}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        pytest.fail(
            f"{self.module} not ready in {timeout:.0f} s (last: {last})\n{self.stderr_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """SIGTERM, then wait; return the exit code. Kills the group if it outstays ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            pytest.fail(f"{self.module} did not stop within {timeout:.0f} s\n{self.stderr_tail()}")

    def leftovers(self, wait: float = 5.0) -> list[int]:
        """Processes of this one's group still alive after ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while True:
            left = group_members(self.pid)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def kill_group(self) -> None:
        """SIGKILL every process of the group this test started (its own session).

        Only while the group has a member: a group id is not reused while one lives.
        """
        if self.process.poll() is None or group_members(self.pid):
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)

    def close_files(self) -> None:
        for f in self._files:
            f.close()  # type: ignore[attr-defined]
        self._files.clear()


def start(
    module: str,
    folder: Path,
    env: Mapping[str, str],
    *,
    base_url: str | None = None,
) -> Started:
    """Start ``python -m <module>`` in a new session, its output going to files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = (folder / f"{module}.stdout.log").open("wb")
    err = (folder / f"{module}.stderr.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=REPO,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        start_new_session=True,
    )
    return Started(module, process, folder, base_url, _files=[out, err])


def lost_its_port(started: Started) -> bool:
    """Whether the process could not listen because another one held its port."""
    # The API says so in a sentence (common/listening.py); other servers in the errno's words.
    said = started.stderr().lower()
    return "address already in use" in said or "is already in use" in said


def _start_listening(
    module: str, folder: Path, env: Mapping[str, str], *, http: bool, listen: str | None
) -> Started:
    """Start the process with a free port in the setting ``listen`` and see it listen there;
    start it again on another port if another process took that one first."""
    for attempt in range(1, BIND_ATTEMPTS + 1):
        chosen = dict(env)
        if listen is not None:
            chosen[listen] = str(free_port())
        base_url = f"http://127.0.0.1:{chosen['PORT']}" if http else None
        started = start(module, folder, chosen, base_url=base_url)
        if listen is None:
            return started
        started.port = int(chosen[listen])
        if started.wait_listening(started.port):
            return started
        lost_race = lost_its_port(started)
        started.kill_group()
        started.close_files()
        if not lost_race or attempt == BIND_ATTEMPTS:
            pytest.fail(f"{module} could not listen on {chosen[listen]}\n{started.stderr_tail()}")
    raise AssertionError("unreachable")


@contextmanager
def running(
    module: str,
    folder: Path,
    env: Mapping[str, str],
    *,
    http: bool,
    listen: str | None = None,
    ready_log: str | None = None,
    clean_exit_log: str | None = None,
) -> Iterator[Started]:
    """Run ``python -m <module>`` for the ``with`` block, ready when it yields.

    An HTTP server gets a free port in ``PORT``; ``listen`` names another setting that takes a
    port to listen on (``WORKER_METRICS_PORT``). On a clean exit of the block, the process must
    stop on SIGTERM with exit code 0 and leave no process behind; when the block raised,
    everything it started is cleaned up regardless. A process that logs ``clean_exit_log`` may
    instead end by the SIGTERM itself: uvicorn shuts down gracefully, then raises the signal it
    caught again, as a Unix process should.
    """
    started = _start_listening(module, folder, env, http=http, listen="PORT" if http else listen)
    try:
        if http:
            started.wait_ready()
        if ready_log is not None:
            started.wait_for_log(ready_log)
        yield started
    except BaseException:
        with suppress(BaseException):
            started.stop(timeout=15)
        started.kill_group()
        started.close_files()
        raise
    try:
        descendants = descendants_of(started.pid)
        code = started.stop()
        left = sorted({*started.leftovers(), *alive(descendants)})
        assert not left, f"{module} left processes behind: {left}\n{started.stderr_tail()}"
        by_signal = clean_exit_log is not None and clean_exit_log in started.stderr()
        clean = (0, -signal.SIGTERM) if by_signal else (0,)
        assert code in clean, f"{module} exited with {code}\n{started.stderr_tail()}"
    finally:
        started.kill_group()
        started.close_files()


def supervisor(
    folder: Path, *, workers: int = 1, database_url: str | None = None, **extra: str
) -> AbstractContextManager[Started]:
    """``python -m common.supervisor`` (what ``make run`` starts) on a free port."""
    env = service_env(folder / "data", workers=workers, database_url=database_url, extra=extra)
    return running("common.supervisor", folder, env, http=True, ready_log="service started")


def api(
    folder: Path, *, database_url: str | None = None, **extra: str
) -> AbstractContextManager[Started]:
    """``python -m api`` alone on a free port."""
    env = service_env(folder / "data", database_url=database_url, extra=extra)
    return running("api", folder, env, http=True, clean_exit_log='"Application shutdown complete."')


def worker(
    folder: Path, *, database_url: str | None = None, metrics: bool = False, **extra: str
) -> AbstractContextManager[Started]:
    """``python -m worker`` alone, ready once it logs that it started consuming; with
    ``metrics``, serving its own metrics on a free port (``WORKER_METRICS_PORT``)."""
    env = service_env(folder / "data", database_url=database_url, extra=extra)
    listen = "WORKER_METRICS_PORT" if metrics else None
    return running("worker", folder, env, http=False, listen=listen, ready_log="worker started")
