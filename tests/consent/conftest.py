"""Browser fixtures for the consent tests: the e2e suite's Chromium, screenshots of our own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import Screenshot, browser, page  # noqa: F401  (fixtures)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "consent"
# Installed from the npm registry by ./dev test into tools/axe (outside tests/: a
# vendored bundle is not the suite's code).
AXE = (
    Path(__file__).resolve().parents[2]
    / "tools"
    / "axe"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """Save a full-page screenshot as test-artifacts/consent/<test>/<NN>-<name>.png."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    taken = 0

    def take(shown: Page, name: str) -> Path:
        nonlocal taken
        taken += 1
        path = folder / f"{taken:02d}-{name}.png"
        shown.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def site(live_server, settings) -> str:  # type: ignore[no-untyped-def]
    settings.BASE_URL = live_server.url
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    return str(live_server.url)
