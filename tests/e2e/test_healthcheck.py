"""``python -m worker.healthcheck``, the containers' health check: healthy while the worker's
heartbeat file is fresh, unhealthy when it is missing, stale or not configured."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.support.processes import REPO, service_env, worker

BEAT_WITHIN_SECONDS = 30.0


def healthcheck(data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.healthcheck"],
        cwd=REPO,
        env=service_env(data_dir, extra=settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def aged(path: Path, seconds: float) -> None:
    """Make ``path`` look last touched ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_health_check_follows_the_heartbeat_of_a_running_worker(tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    data = tmp_path / "data"

    # Given no worker ran yet, the check fails and says why
    before = healthcheck(data, HEARTBEAT_FILE=str(beat))
    assert (before.returncode, before.stderr.strip()) == (1, f"no heartbeat at {beat}")

    # When a worker runs with the file, the check passes
    with worker(tmp_path, HEARTBEAT_FILE=str(beat)):
        deadline = time.monotonic() + BEAT_WITHIN_SECONDS
        while not beat.exists():
            assert time.monotonic() < deadline, "the worker never touched its heartbeat file"
            time.sleep(0.05)
        running = healthcheck(data, HEARTBEAT_FILE=str(beat))
        assert (running.returncode, running.stderr) == (0, ""), running.stderr

    # And once the worker stopped, the check fails as soon as the heartbeat is older than the
    # limit: five message locks, at least two minutes.
    for lock, limit in (("10", 120), ("60", 300)):
        aged(beat, limit - 5)
        assert (
            healthcheck(data, HEARTBEAT_FILE=str(beat), LOCK_DURATION_SECONDS=lock).returncode == 0
        )
        aged(beat, limit + 5)
        stale = healthcheck(data, HEARTBEAT_FILE=str(beat), LOCK_DURATION_SECONDS=lock)
        assert stale.returncode == 1
        # The check itself takes a moment to start: the age it reads is at least the one set.
        said = re.fullmatch(rf"last heartbeat (\d+)s ago \(limit {limit}s\)", stale.stderr.strip())
        assert said is not None, stale.stderr
        assert limit + 5 <= int(said.group(1)) < limit + 5 + 60


def test_the_health_check_fails_without_a_heartbeat_file_setting(tmp_path: Path) -> None:
    done = healthcheck(tmp_path / "data")

    assert (done.returncode, done.stderr.strip()) == (1, "HEARTBEAT_FILE is not set")
