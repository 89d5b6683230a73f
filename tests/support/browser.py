"""Headless Chromium for the dashboard tests, driven by Playwright, and where screenshots go.

The browser is Debian's ``chromium`` (``CHROMIUM`` overrides the path); Playwright only drives
it, so no browser is downloaded. Without one the tests skip locally and fail in CI.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.support.services import unavailable

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return os.environ.get("CHROMIUM") or found


@contextmanager
def chromium() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        unavailable("Chromium (install Debian's 'chromium' package, or set CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A page, with every request it made, every script error and every console error."""

    page: Page
    origin: str
    shots: Path
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def foreign_requests(self) -> list[str]:
        own = (self.origin, "data:", "blob:")
        return [u for u in self.requests if not u.startswith(own)]


def watch(browser: Browser, origin: str, test_name: str) -> Watched:
    """A new page on ``origin`` that records requests and errors; screenshots go under
    ``test-artifacts/<test name>/``."""
    shots = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 900}, base_url=origin)
    watched = Watched(page, origin, shots)
    page.on("request", lambda r: watched.requests.append(r.url))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    return watched
