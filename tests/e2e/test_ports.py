"""A port chosen for a server may be taken by another process before the server binds it: the
server is then started again on another port, and the tests never talk to the intruder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import processes


class _Intruder(BaseHTTPRequestHandler):
    """Answers 200 to everything, as a ready service would."""

    seen: list[str] = []

    def do_GET(self) -> None:
        _Intruder.seen.append(self.path)
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def intruder() -> Iterator[int]:
    """An HTTP server of another process's, on a port the tests are about to choose."""
    _Intruder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Intruder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_a_server_whose_port_was_taken_is_started_on_another(
    tmp_path: Path, intruder: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first port chosen is taken by the time the API binds it,
    real = processes.free_port
    chosen = iter([intruder])
    monkeypatch.setattr(processes, "free_port", lambda: next(chosen, None) or real())

    # when the API is started,
    with processes.api(tmp_path) as server, server.client() as client:
        # then it listens on another port, and it is the one that answers there.
        assert server.port is not None and server.port != intruder
        assert processes.holds_listening_socket(server.pid, server.port)
        assert client.get("/jobs").json()["total"] == 0
    assert _Intruder.seen == []


def test_a_worker_whose_metrics_port_was_taken_is_started_on_another(
    tmp_path: Path, intruder: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = processes.free_port
    chosen = iter([intruder])
    monkeypatch.setattr(processes, "free_port", lambda: next(chosen, None) or real())

    with processes.worker(tmp_path, metrics=True) as consumer:
        assert consumer.port is not None and consumer.port != intruder
        assert processes.holds_listening_socket(consumer.pid, consumer.port)
