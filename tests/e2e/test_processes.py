"""The processes themselves: clean stops, restarted workers, refused configurations, split roles."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import SAMPLE_DATA, wait_for_jobs
from tests.support.processes import (
    REPO,
    Started,
    alive,
    api,
    children_of,
    free_port,
    group_members,
    service_env,
    start,
    supervisor,
    worker,
)
from tests.support.terminal import CTRL_C, Terminal

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


MODULES = ("api", "worker", "common.supervisor")
IMPOSSIBLE = (
    ("SERVICEBUS_QUEUE_NAME", "x", "SERVICEBUS_QUEUE_NAME"),
    ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
)


def test_an_impossible_configuration_is_refused_in_one_line(tmp_path: Path) -> None:
    # Every entry point with each impossible setting, all started at once.
    cases = [(m, *setting) for m in MODULES for setting in IMPOSSIBLE]
    started = []
    for n, (module, name, value, _) in enumerate(cases):
        env = service_env(tmp_path / f"data{n}", extra={name: value})
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for n, (process, (module, _, _, mentions)) in enumerate(zip(started, cases, strict=True)):
        _, err = process.communicate(timeout=60)
        stderr = err.decode(errors="replace")
        assert process.returncode != 0, module
        assert "Traceback" not in stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, (module, stderr)
        assert lines[0].startswith("configuration error: ")
        assert mentions in lines[0]
        assert not (tmp_path / f"data{n}").exists(), "nothing is created before settings are valid"


def test_api_and_worker_started_apart_share_one_data_dir(tmp_path: Path) -> None:
    # Given an API and a worker started on their own against the same data folder,
    with api(tmp_path) as server, worker(tmp_path) as consumer:
        assert children_of(consumer.pid) == []
        # when a file is uploaded to the API, the worker ingests it.
        upload_departments(server)
        assert '"event": "part finished"' in consumer.stderr()


def test_service_started_is_logged_once_the_api_answers(tmp_path: Path) -> None:
    with supervisor(tmp_path, workers=1) as service:
        log = service.stderr()
        # The API's own line comes first: "started" means it can be used.
        assert log.index("Application startup complete.") < log.index('"event": "service started"')


@pytest.mark.parametrize("module", ["common.supervisor", "api"])
def test_a_taken_port_is_one_sentence_naming_the_setting(tmp_path: Path, module: str) -> None:
    # Given a port something else listens on,
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = service_env(tmp_path / "data", port=port, workers=1)

        # when the service is started on it,
        done = subprocess.run(
            [sys.executable, "-m", module],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )

    # then it stops at once with one sentence that says which port and what to set.
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr and "service started" not in stderr
    [line] = [x for x in stderr.splitlines() if str(port) in x]
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "set PORT to a free port" in line
    assert not line.startswith("{"), "a sentence, not a JSON log line"


def run_api_until_ready(
    tmp_path: Path, extra: dict[str, str], *, drop: tuple[str, ...] = ()
) -> str:
    """Start ``python -m api`` with stderr to a file, stop it once ready; its stderr."""
    env = {k: v for k, v in service_env(tmp_path, port=free_port(), extra=extra).items()}
    for name in drop:
        env.pop(name, None)
    started = start("api", tmp_path, env, base_url=f"http://127.0.0.1:{env['PORT']}")
    try:
        started.wait_ready()
        started.stop()
    finally:
        started.kill_group()
        started.close_files()
    return started.stderr()


def test_logs_are_json_by_default_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    log = run_api_until_ready(tmp_path, {}, drop=("LOG_FORMAT",))
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["event"] for line in lines)
    assert any(json.loads(line)["level"] == "info" for line in lines)


def test_log_format_console_and_log_level_are_obeyed(tmp_path: Path) -> None:
    log = run_api_until_ready(tmp_path, {"LOG_FORMAT": "console", "LOG_LEVEL": "warning"})
    lines = [line for line in log.splitlines() if line.strip()]
    # The warning about running without keys is shown, as a line for people;
    assert any("[warning" in line and "no API_KEYS set" in line for line in lines), log
    assert not any(line.startswith("{") for line in lines), log
    # and nothing below WARNING is.
    assert not any("[info" in line for line in lines), log


def test_ctrl_c_stops_make_run_cleanly(tmp_path: Path) -> None:
    # Given `make run` in a terminal (its own), on the environment the tests were installed in,
    env = service_env(tmp_path / "data", port=free_port(), workers=1)
    del env["LOG_FORMAT"]  # as a person's shell has it
    prefix = Path(sys.prefix)
    make = [
        "make",
        "--no-print-directory",
        f"VENV={prefix}",
        "-o",
        f"{prefix}/.installed-runtime",  # installed already: run only
        "run",
    ]
    terminal = Terminal(make, columns=100, cwd=REPO, env=env)
    try:
        terminal.wait_for("worker started", timeout=60)
        with httpx.Client(timeout=5) as client:
            assert client.get(f"http://127.0.0.1:{env['PORT']}/healthz").status_code == 200
        members = group_members(terminal.process.pid)
        assert len(members) >= 4, members  # make, the supervisor, the API, a worker

        # when Ctrl-C is typed,
        terminal.type(CTRL_C)
        terminal.wait(timeout=STOP_WITHIN_SECONDS)

        # then every process of the service is gone, having said so for people to read,
        deadline = time.monotonic() + 5
        while alive(members) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alive(members) == []
        text = terminal.text()
        assert "service stopped" in text
        assert "[info     ] service started" in text  # console lines, not JSON
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    finally:
        terminal.close()
