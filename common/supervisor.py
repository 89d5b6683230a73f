"""``make run``: migrate, then run one API server and WORKERS workers; restart workers that die.

The service counts as started once the API answers ``/healthz`` and the workers are spawned.
SIGINT (Ctrl-C) or SIGTERM stops every child cleanly (workers finish their current block first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import FrameType

import structlog

from common.listening import CannotListen, check_free
from common.logging import configure_logging
from common.settings import Settings, load_settings, renamed_in
from common.sql.db import Database
from common.sql.migrate import current_revision, upgrade

log = structlog.get_logger("ingest.supervisor")

EXIT_CANNOT_LISTEN = 2
_POLL_SECONDS = 0.1
_RESTART_DELAY_SECONDS = 1.0
_RESTART_DELAY_MAX_SECONDS = 30.0
# A worker that ran this long before dying gets a fresh restart delay.
_HEALTHY_RUN_SECONDS = 60.0
_STOP_GRACE_SECONDS = 30.0
# Where a wildcard listener is reached from this machine.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - not a bind


def _ignore_sigint() -> None:
    # A child still importing when Ctrl-C reaches the whole terminal group would die with a
    # KeyboardInterrupt traceback; until it installs its own handlers it leaves the stop to the
    # SIGTERM this process sends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _spawn(module: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module], env=os.environ.copy(), preexec_fn=_ignore_sigint
    )


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


def health_url(settings: Settings) -> str:
    """The API's ``/healthz`` as this machine reaches it."""
    host = _LOOPBACK.get(settings.host, settings.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}/healthz"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Supervisor:
    """One API server and ``settings.workers`` workers, until a signal or the API's exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = False
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        log.info("stopping", signal=signal.Signals(signum).name)

    def start_api(self) -> bool:
        """Start the API and wait until it answers; False if it exited or a signal came."""
        self.api = _spawn("api")
        url = health_url(self.settings)
        while not self.stopping:
            if self.api.poll() is not None:
                return False
            if _answers(url):
                return True
            time.sleep(_POLL_SECONDS)
        return False

    def start_workers(self) -> None:
        self.workers = [_spawn("worker") for _ in range(self.settings.workers)]

    def keep_running(self) -> None:
        """Restart workers that die, until a signal or the API's exit."""
        assert self.api is not None
        count = len(self.workers)
        started = [time.monotonic()] * count
        delays = [_RESTART_DELAY_SECONDS] * count
        while not self.stopping:
            time.sleep(0.2)
            if self.api.poll() is not None:
                log.error("API server exited; stopping", returncode=self.api.returncode)
                return
            now = time.monotonic()
            for i, worker in enumerate(self.workers):
                if worker.poll() is None or self.stopping:
                    continue
                if now - started[i] > _HEALTHY_RUN_SECONDS:
                    delays[i] = _RESTART_DELAY_SECONDS
                if now - started[i] < delays[i]:
                    continue  # restart once the back-off has passed
                log.warning(
                    "worker exited; restarting", returncode=worker.returncode, after=delays[i]
                )
                self.workers[i] = _spawn("worker")
                started[i] = now
                delays[i] = min(delays[i] * 2, _RESTART_DELAY_MAX_SECONDS)

    def stop(self) -> None:
        _stop_all([p for p in (self.api, *self.workers) if p is not None])


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    for renamed in renamed_in(os.environ):
        log.warning(renamed)
    try:
        check_free(settings.host, settings.port)
    except CannotListen as exc:
        print(f"cannot start the service: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CANNOT_LISTEN) from None
    supervisor = Supervisor(settings)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    signal.signal(signal.SIGTERM, supervisor.on_signal)

    db = Database.from_url(settings.sqlalchemy_url)
    upgrade(db)
    log.info("schema ready", revision=current_revision(db))
    db.dispose()
    if supervisor.stopping:
        return
    try:
        if supervisor.start_api():
            supervisor.start_workers()
            log.info(
                "service started",
                url=f"http://{settings.host}:{settings.port}",
                workers=settings.workers,
                data_dir=str(settings.data_dir.resolve()),
            )
            supervisor.keep_running()
        elif not supervisor.stopping:
            assert supervisor.api is not None
            code = supervisor.api.returncode
            log.error("API server exited before it answered; stopping", returncode=code)
    finally:
        supervisor.stop()
        log.info("service stopped")
    if not supervisor.stopping:
        api_code = supervisor.api.returncode if supervisor.api else None
        sys.exit(EXIT_CANNOT_LISTEN if api_code == EXIT_CANNOT_LISTEN else 1)


if __name__ == "__main__":
    main()
