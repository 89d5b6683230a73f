"""Azurite (npm ``azurite@3.35.0``, installed by ``make test`` into ``.tools/azurite``): the
blob service alone, in memory, on a free loopback port; stoppable and restartable on that port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests.support.services import unavailable

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(
    os.environ.get("AZURITE_BLOB", REPO / ".tools/azurite/node_modules/.bin/azurite-blob")
)
# Azurite's published development account and key.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def start(self) -> None:
        self._log = log = (self.workdir / "azurite.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(BINARY),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
                "--disableTelemetry",
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        unavailable(f"Azurite (it did not start; see {self.workdir / 'azurite.log'})")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextmanager
def azurite(workdir: Path) -> Iterator[Azurite]:
    """A running Azurite blob service; stopped at the end."""
    if not BINARY.exists():
        unavailable(f"Azurite ({BINARY} is missing; `make test` installs it)")
    server = Azurite(_free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
