"""API keys: who may read, write and administer, and what the others are told."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from common.access import Role
from common.bootstrap import build_services
from common.settings import Settings
from tests.conftest import NO_WAIT_RETRY, make_settings

READER = "reader-key-000000000001"
WRITER = "writer-key-000000000002"
ADMIN = "admin-key-0000000000003"
KEYS = f"{READER}=read,{WRITER}=write,{ADMIN}=admin"
ROW = {"rows": [{"id": 1, "department": "Sales"}]}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", api_keys=KEYS)
    services = build_services(settings, retry=NO_WAIT_RETRY)
    from common.sql.migrate import upgrade

    upgrade(services.db)
    with TestClient(create_app(services=services)) as c:
        yield c
    services.close()


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/jobs", READER),
        ("GET", "/reports/hires-by-quarter?year=2021", READER),
        ("GET", "/metrics", READER),
        ("GET", "/tables", READER),
        ("GET", "/tables/departments", READER),
        ("POST", "/tables/departments/rows", WRITER),
        ("POST", "/uploads/departments", WRITER),
        ("GET", "/dead-letters", ADMIN),
        ("GET", "/backups", ADMIN),
        ("POST", "/reports/verify", ADMIN),
    ],
)
def test_each_route_needs_its_role_and_says_so(
    client: TestClient, method: str, path: str, needed: str
) -> None:
    def call(key: str | None, header: str = "Authorization") -> httpx.Response:
        headers = {}
        if key is not None:
            headers[header] = f"Bearer {key}" if header == "Authorization" else key
        if path.startswith("/uploads"):
            headers["Content-Type"] = "text/csv"
            return client.request(method, path, headers=headers, content=b"1,Sales\n")
        if path.startswith("/tables"):
            return client.request(method, path, headers=headers, json=ROW)
        return client.request(method, path, headers=headers)

    anonymous = call(None)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert call("not-a-key-at-all-123", "X-API-Key").status_code == 401

    ranks = [READER, WRITER, ADMIN]
    for key in ranks:
        answer = call(key, "Authorization" if key != WRITER else "X-API-Key")
        if ranks.index(key) < ranks.index(needed):
            assert answer.status_code == 403, (key, answer.text)
            assert "role" in answer.json()["detail"]
        else:
            assert answer.status_code in (200, 202), (key, answer.text)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs", "/openapi.json"])
def test_health_readiness_and_the_api_document_need_no_key(client: TestClient, path: str) -> None:
    answer = client.get(path)

    assert answer.status_code == 200, answer.text
    if path == "/readyz":
        assert answer.json()["checks"] == {"database": "ok", "blob_store": "ok", "queue": "ok"}
    if path == "/docs":
        assert "/openapi.json" in answer.text
    if path == "/openapi.json":
        assert "/uploads/{table}" in answer.json()["paths"]


def test_without_keys_the_service_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="API_KEYS"):
        Settings(data_dir=tmp_path, host="0.0.0.0")
    anyone = Settings(data_dir=tmp_path, host="0.0.0.0", allow_unauthenticated=True)
    assert (anyone.host, bool(anyone.keys)) == ("0.0.0.0", False)
    keyed = Settings(data_dir=tmp_path, host="0.0.0.0", api_keys=KEYS)
    roles = [keyed.keys.role_of(k) for k in (READER, WRITER, ADMIN, "not-a-key-at-all-123")]
    assert (keyed.host, roles) == ("0.0.0.0", [Role.READ, Role.WRITE, Role.ADMIN, None])


def test_short_or_roleless_keys_are_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="16 characters"):
        Settings(data_dir=tmp_path, api_keys="short=admin")
    with pytest.raises(ValueError, match="read, write, admin"):
        Settings(data_dir=tmp_path, api_keys=f"{ADMIN}=owner")


def test_a_batch_body_over_the_limit_gets_413(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'y.db'}", max_batch_bytes=2048)
    services = build_services(settings, retry=NO_WAIT_RETRY)
    from common.sql.migrate import upgrade

    upgrade(services.db)
    rows = {"rows": [{"id": i, "department": "x" * 50} for i in range(1, 100)]}
    with TestClient(create_app(services=services)) as c:
        answer = c.post("/tables/departments/rows", json=rows)
    services.close()
    assert answer.status_code == 413
    assert "MAX_BATCH_BYTES" in answer.json()["detail"]
