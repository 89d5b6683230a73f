"""``make run``: migrate, then run one API server and WORKERS workers; restart workers that die.

SIGINT or SIGTERM stops every child cleanly (workers finish their current block first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

import structlog

from common.db import Database
from common.logging import configure_logging
from common.migrate import current_revision, upgrade
from common.settings import load_settings

log = structlog.get_logger("ingest.supervisor")

_RESTART_DELAY_SECONDS = 1.0
_RESTART_DELAY_MAX_SECONDS = 30.0
# A worker that ran this long before dying gets a fresh restart delay.
_HEALTHY_RUN_SECONDS = 60.0
_STOP_GRACE_SECONDS = 30.0


def _spawn(module: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module], env=os.environ.copy())


def _stop_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    stopping = False

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        log.info("stopping", signal=signal.Signals(signum).name)

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    db = Database.from_url(settings.sqlalchemy_url)
    upgrade(db)
    log.info("schema ready", revision=current_revision(db))
    db.dispose()
    if stopping:
        return

    api = _spawn("api")
    workers = [_spawn("worker") for _ in range(settings.workers)]
    started = [time.monotonic()] * len(workers)
    delays = [_RESTART_DELAY_SECONDS] * len(workers)
    log.info(
        "service started",
        url=f"http://{settings.host}:{settings.port}",
        workers=settings.workers,
        data_dir=str(settings.data_dir.resolve()),
    )
    try:
        while not stopping:
            time.sleep(0.2)
            if api.poll() is not None:
                log.error("API server exited; stopping", returncode=api.returncode)
                break
            now = time.monotonic()
            for i, worker in enumerate(workers):
                if worker.poll() is None or stopping:
                    continue
                if now - started[i] > _HEALTHY_RUN_SECONDS:
                    delays[i] = _RESTART_DELAY_SECONDS
                if now - started[i] < delays[i]:
                    continue  # restart once the back-off has passed
                log.warning(
                    "worker exited; restarting", returncode=worker.returncode, after=delays[i]
                )
                workers[i] = _spawn("worker")
                started[i] = now
                delays[i] = min(delays[i] * 2, _RESTART_DELAY_MAX_SECONDS)
    finally:
        _stop_all([api, *workers])
        log.info("service stopped")
    if not stopping:
        sys.exit(1)


if __name__ == "__main__":
    main()
