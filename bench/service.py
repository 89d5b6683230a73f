"""Start the service's real processes for a benchmark and read their peak memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return [int(line.split()[0]) for line in out.splitlines() if line.strip()]


@dataclass
class Service:
    url: str
    process: subprocess.Popen[bytes]
    client: httpx.Client

    def pids(self, module: str) -> list[int]:
        out = []
        for pid in _children(self.process.pid):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if module.encode() in args:
                out.append(pid)
        return out

    def peak_rss(self, module: str) -> float:
        return max((peak_rss_mb(p) for p in self.pids(module)), default=0.0)

    def load_parents(self, folder: Path) -> None:
        """Upload ``folder``'s departments and jobs files and wait for both."""
        for table in ("departments", "jobs"):
            job = self.client.post(
                f"/uploads/{table}",
                content=(folder / f"{table}.csv").read_bytes(),
                headers={"Content-Type": "text/csv"},
            ).json()
            self.wait_for(job["job_id"])

    def wait_for(self, job_id: str, timeout: float = 3600) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job: dict[str, object] = self.client.get(f"/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(0.05)
        raise TimeoutError(job_id)


@contextmanager
def running_service(
    data_dir: Path,
    workers: int,
    database_url: str | None,
    api_processes: int = 1,
    settings: Mapping[str, str] | None = None,
) -> Iterator[Service]:
    """The service's processes on ``data_dir``, with ``settings`` over the benchmark's own."""
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "WORKERS": str(workers),
        "API_PROCESSES": str(api_processes),
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "RECEIVE_WAIT_SECONDS": "0.05",
        "DEPENDENCY_WAIT_SECONDS": "0.2",
        **(settings or {}),
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "common.supervisor"], cwd=REPO, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=600)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"service did not start; see {data_dir / 'service.log'}")
            time.sleep(0.2)
        yield Service(url, process, client)
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
