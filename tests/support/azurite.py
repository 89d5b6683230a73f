"""Azurite (npm ``azurite@3.35.0``, installed by ``make test`` into ``.tools/azurite``): the
blob service alone, in memory, on a free loopback port; stoppable and restartable on that port."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tests.support.services import unavailable

if TYPE_CHECKING:
    from common.blob import BlobInfo, BlobWriter
    from common.blob.azure import AzureBlobStore

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
        """Start on :attr:`port` (again, after :meth:`stop`) and wait until it answers."""
        problem = self._launch()
        if problem is not None:
            unavailable(problem)

    def _launch(self) -> str | None:
        """Start; the reason it could not, or None."""
        if not BINARY.exists():
            return f"Azurite ({BINARY} is missing; `make test` installs it)"
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
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return None
            except OSError:
                time.sleep(0.1)
        self.stop()
        return f"Azurite (it did not start; see {self.workdir / 'azurite.log'})"

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


# --- one Azurite for the whole test session -----------------------------------------------------

_shared: Azurite | None = None
_shared_problem: str | None = None


def shared_azurite() -> Azurite:
    """The session's Azurite: started on first use, stopped when the test process exits.

    Tests sharing it keep apart by container names (:class:`FreshContainers`); a test that stops
    Azurite starts its own with :func:`azurite` instead. A failed start is not retried per test.
    """
    global _shared, _shared_problem
    if _shared is None and _shared_problem is None:
        workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        server = Azurite(_free_port(), workdir)
        _shared_problem = server._launch()
        if _shared_problem is None:
            _shared = server
            atexit.register(shutil.rmtree, workdir, ignore_errors=True)
            atexit.register(server.stop)  # runs first
    if _shared is None:
        unavailable(_shared_problem or "Azurite")
        raise AssertionError("unreachable: unavailable() raises")
    return _shared


class FreshContainers:
    """A blob store whose container names carry a suffix of their own, so that tests sharing
    one Azurite never see each other's blobs. Everything else goes to the store unchanged."""

    def __init__(self, store: AzureBlobStore) -> None:
        self.store = store
        self.suffix = uuid.uuid4().hex[:12]

    def container(self, name: str) -> str:
        """The container actually used for ``name``."""
        return f"{name}-{self.suffix}"

    def ensure_container(self, container: str) -> None:
        self.store.ensure_container(self.container(container))

    def open_writer(self, container: str, name: str) -> BlobWriter:
        return self.store.open_writer(self.container(container), name)

    def read_range(
        self,
        container: str,
        name: str,
        start: int = 0,
        end: int | None = None,
        chunk_size: int = 4 * 1024 * 1024,
    ) -> Iterator[bytes]:
        return self.store.read_range(self.container(container), name, start, end, chunk_size)

    def info(self, container: str, name: str) -> BlobInfo:
        return self.store.info(self.container(container), name)

    def list(self, container: str, prefix: str = "") -> Iterator[BlobInfo]:
        return self.store.list(self.container(container), prefix)

    def delete(self, container: str, name: str) -> None:
        self.store.delete(self.container(container), name)

    def ping(self) -> None:
        self.store.ping()


@contextmanager
def azurite_store(**options: Any) -> Iterator[FreshContainers]:
    """An :class:`AzureBlobStore` on the session's Azurite, in containers of this test's own.
    ``options`` go to :meth:`AzureBlobStore.from_connection_string`."""
    from common.blob.azure import AzureBlobStore

    server = shared_azurite()
    store = AzureBlobStore.from_connection_string(server.connection_string, **options)
    try:
        yield FreshContainers(store)
    finally:
        store.close()
