"""The dashboard's page and assets as served: complete, same-origin, and shut to anything else.

What the page does is tested in a real browser (``tests/e2e/test_dashboard.py``); this checks
what any client receives, without one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from common.bootstrap import build_services
from common.sql.migrate import upgrade
from tests.conftest import NO_WAIT_RETRY, make_settings

KEY = "admin-key-0000000000003"
# What a page loads: scripts, stylesheets and icons, and the modules scripts import.
REFERENCE = re.compile(
    r"""<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"|from\s+"(\.[^"]+)"|import\s+"(\.[^"]+)\""""
)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", api_keys=f"{KEY}=admin")
    services = build_services(settings, retry=NO_WAIT_RETRY)
    upgrade(services.db)
    with TestClient(create_app(services=services)) as c:
        yield c
    services.close()


def assets(client: TestClient, path: str, seen: dict[str, str]) -> None:
    """Fetch ``path`` and, recursively, every page or module it refers to."""
    answer = client.get(path)
    assert answer.status_code == 200, f"{path}: {answer.status_code}"
    seen[path] = answer.headers["content-type"]
    base = path.rsplit("/", 1)[0] + "/"
    for match in REFERENCE.finditer(answer.text):
        ref = next(g for g in match.groups() if g)
        if ref.startswith("data:"):
            continue
        target = ref if ref.startswith("/") else base + ref.removeprefix("./")
        if target not in seen:
            assets(client, target, seen)


def test_the_page_is_public_but_holds_no_data(client: TestClient) -> None:
    # The page loads without a key (it asks for one); the data behind it does not.
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert client.get("/jobs").status_code == 401
    assert client.get("/jobs", headers={"X-API-Key": KEY}).status_code == 200


def test_every_asset_is_served_from_the_service_itself(client: TestClient) -> None:
    seen: dict[str, str] = {}
    assets(client, "/", seen)
    assert {"/dashboard/app.js", "/dashboard/api.js", "/dashboard/charts.js"} <= set(seen)
    assert seen["/dashboard/app.css"].startswith("text/css")
    for path, media in seen.items():
        if path.endswith(".js"):
            assert media.split(";")[0] in ("text/javascript", "application/javascript"), path
    for path in seen:
        answer = client.get(path)
        assert answer.headers["cache-control"] == "no-cache", path  # a release shows at once
        text = answer.text.replace(SVG_NAMESPACE, "")
        assert not re.search(r"https?://", text), f"{path} names another origin"


def test_the_page_allows_nothing_from_elsewhere(client: TestClient) -> None:
    headers = client.get("/").headers
    policy = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split("; ")}
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "script-src" not in policy and "style-src" not in policy  # 'self' only, by default
    assert headers["x-content-type-options"] == "nosniff"


def test_the_dashboard_is_not_part_of_the_api_description(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(p.startswith("/dashboard") for p in paths)
