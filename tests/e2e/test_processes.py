"""The processes themselves: clean stops, restarted workers, refused configurations, split roles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import SAMPLE_DATA, wait_for_jobs
from tests.support.processes import (
    REPO,
    Started,
    api,
    children_of,
    service_env,
    supervisor,
    worker,
)

STOP_WITHIN_SECONDS = 20.0
RESTART_WITHIN_SECONDS = 20.0


def upload_departments(service: Started) -> None:
    """Upload the sample departments file and see its job succeed."""
    with service.client() as client:
        answer = client.post(
            "/uploads/departments",
            content=(SAMPLE_DATA / "departments.csv").read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        job = wait_for_jobs(service, client, [job_id])[job_id]
    assert job["status"] == "succeeded", job
    assert job["rows_inserted"] == 12


def test_sigterm_stops_every_child_with_exit_code_0(tmp_path: Path) -> None:
    with supervisor(tmp_path, workers=2) as service:
        # Given a running service with its API and two workers,
        children = service.children()
        assert sorted(service.children("api")) != []
        assert len(service.children("worker")) == 2, children

        # when it gets SIGTERM,
        began = time.monotonic()
        code = service.stop(timeout=STOP_WITHIN_SECONDS)

        # then it exits 0 soon, and every child is gone.
        assert code == 0, service.stderr_tail()
        assert time.monotonic() - began < STOP_WITHIN_SECONDS
        assert service.leftovers() == []
        assert all(not Path(f"/proc/{pid}").exists() for pid in children)
        assert '"event": "service stopped"' in service.stderr()


def test_a_killed_worker_is_restarted(tmp_path: Path) -> None:
    with supervisor(tmp_path, workers=1) as service:
        # Given a service with one worker,
        (first,) = service.children("worker")

        # when the worker is killed outright,
        os.kill(first, signal.SIGKILL)

        # then the supervisor starts a new one,
        deadline = time.monotonic() + RESTART_WITHIN_SECONDS
        while time.monotonic() < deadline:
            now = service.children("worker")
            if now and first not in now:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"no new worker in {RESTART_WITHIN_SECONDS:.0f} s\n{service.stderr_tail()}")
        assert len(now) == 1
        assert '"event": "worker exited; restarting"' in service.stderr()

        # and an upload made afterwards is still ingested.
        upload_departments(service)


@pytest.mark.parametrize("module", ["api", "worker", "common.supervisor"])
@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("SERVICEBUS_QUEUE_NAME", "x", "SERVICEBUS_QUEUE_NAME"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
    ],
)
def test_an_impossible_configuration_is_refused_in_one_line(
    tmp_path: Path, module: str, name: str, value: str, mentions: str
) -> None:
    env = service_env(tmp_path / "data", extra={name: value})
    done = subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode != 0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("configuration error: ")
    assert mentions in lines[0]
    assert not (tmp_path / "data").exists(), "nothing is created before the settings are valid"


def test_api_and_worker_started_apart_share_one_data_dir(tmp_path: Path) -> None:
    # Given an API and a worker started on their own against the same data folder,
    with api(tmp_path) as server, worker(tmp_path) as consumer:
        assert children_of(consumer.pid) == []
        # when a file is uploaded to the API, the worker ingests it.
        upload_departments(server)
        assert '"event": "part finished"' in consumer.stderr()
