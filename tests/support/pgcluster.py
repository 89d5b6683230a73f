"""A throwaway PostgreSQL cluster of its own, for tests that stop and start the database server.

``temporary_cluster()`` runs ``initdb`` into a temporary folder (as the ``postgres`` OS user when
the tests run as root: PostgreSQL refuses to run as root), starts the server with ``pg_ctl`` on a
free loopback port with trust authentication, and yields a :class:`Cluster` whose ``url`` is a
SQLAlchemy URL. ``stop()`` and ``start()`` take the same server down and up again on the same
port and data folder; at the end the server is stopped and every file removed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port
from tests.support.services import unavailable

PG_BIN_CANDIDATES = (
    os.environ.get("PG_BIN", ""),
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/14/bin",
)
START_TIMEOUT_SECONDS = 60


def _pg_bin() -> Path | None:
    for candidate in PG_BIN_CANDIDATES:
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class Cluster:
    """A running (or stopped) temporary PostgreSQL server."""

    bin_dir: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(
            command,
            check=check,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS + 30,
            cwd=self.root,
        )

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# temporary test cluster\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "max_connections = 100\n"
            )

    def start(self) -> None:
        """Start the server (same port, same data) and wait until it accepts connections."""
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "start",
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed ({done.returncode}): {done.stdout}{done.stderr}\n"
                f"{self.log_tail()}"
            )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects every client, ``immediate`` is a crash."""
        done = self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop", check=False)
        if done.returncode != 0 and self.running():
            raise RuntimeError(f"pg_ctl stop failed: {done.stdout}{done.stderr}")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no server log)"
        return "--- server log ---\n" + "\n".join(text)


@contextmanager
def temporary_cluster() -> Iterator[Cluster]:
    """A fresh PostgreSQL server on a free loopback port; removed with its files at the end."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl)")
        raise AssertionError("unreachable")
    run_as: str | None = None
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("an OS user 'postgres' to run a temporary PostgreSQL server as")
            raise AssertionError("unreachable") from None
        run_as = "postgres"
    root = Path(tempfile.mkdtemp(prefix="pgcluster-"))
    cluster = Cluster(bin_dir, root, free_port(), run_as)
    try:
        if owner is not None:
            os.chown(root, owner.pw_uid, owner.pw_gid)
        try:
            cluster.init()
        except (OSError, subprocess.SubprocessError) as exc:
            unavailable(f"a temporary PostgreSQL cluster (initdb failed: {exc})")
        cluster.start()
        yield cluster
    finally:
        with suppress(Exception):
            if cluster.data_dir.exists():
                cluster.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)
